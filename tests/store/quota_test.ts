import { assert, assertEquals } from "../assert.ts";
import { startFakeOpenAi } from "../fakes/openai_backend.ts";
import { startTestGateway, waitFor } from "../helpers.ts";
import { checkAccounting } from "./invariant.ts";

Deno.test("quota: key reset-usage zeroes usage and frees reservations; a request in flight is charged to the fresh quota", async () => {
  const fake = await startFakeOpenAi({ models: ["gpt-test", "slow-stream"] });
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test, slow-stream] }
`);
  try {
    const { key, id } = await gateway.createKey({ quota_tokens: 10_000 });
    const client = gateway.client(key);
    await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "before the reset" }],
    });
    const stream = await client.chat.completions.create({
      model: "slow-stream",
      messages: [{ role: "user", content: "in flight" }],
      max_tokens: 4000,
      stream: true,
    });
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    const before = await (await gateway.admin("GET", `/keys/${id}`)).json();
    assert(before.usage.used_tokens > 0);
    assert(before.usage.reserved_tokens >= 4000, JSON.stringify(before.usage));

    const resetAt = Date.now();
    const reset = await gateway.admin("POST", `/keys/${id}/reset-usage`);
    assertEquals(reset.status, 200);
    const after = (await reset.json()).usage;
    assertEquals([after.used_tokens, after.reserved_tokens], [0, 0]);

    // The stream ends after the reset: its usage counts toward the fresh quota.
    await chunks.next();
    stream.controller.abort();
    await waitFor(async () => {
      const records = (await (await gateway.admin("GET", `/requests?key=${id}`)).json()).data;
      return records.length === 2;
    });
    const records = (await (await gateway.admin("GET", `/requests?key=${id}`)).json()).data;
    const streamed = records.find((r: { model: string }) => r.model === "slow-stream");
    assertEquals(streamed.outcome, "client_cancelled");
    const view = await (await gateway.admin("GET", `/keys/${id}`)).json();
    assertEquals(view.usage.used_tokens, streamed.total_tokens);
    const rest = 10_000 - streamed.total_tokens - 20;
    const big = await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "x" }],
      max_tokens: rest,
    });
    assert(big.choices.length === 1, "the fresh quota is available, minus what was charged");
    await checkAccounting(gateway, { keys: { [id]: { answered: 3, resetAt } } });
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
