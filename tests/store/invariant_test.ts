/** The accounting invariant itself: it passes on balanced books and fails on each kind of drift. */
import { assertEquals, assertRejects } from "../assert.ts";
import { startFakeOpenAi } from "../fakes/openai_backend.ts";
import { startTestGateway } from "../helpers.ts";
import { bucketOf } from "../../src/store/aggregates.ts";
import { aggregateKey, budgetKey, leaseKey } from "../../src/store/kv_keys.ts";
import { checkAccounting } from "./invariant.ts";

Deno.test("checkAccounting() fails on a missing or extra record, unexplained usage, a drifted aggregate and a held lease", async () => {
  const kv = await Deno.openKv(":memory:");
  const fake = await startFakeOpenAi({ models: ["gpt-test"] });
  const gateway = await startTestGateway(
    `
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`,
    { kv },
  );
  try {
    const { key, id } = await gateway.createKey({ quota_tokens: 10_000 });
    const answer = await gateway.client(key).chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 10,
    }, { headers: { "x-request-id": "req-1" } });
    const source = { admin: gateway.admin, kv };
    const check = (fields: Record<string, unknown> = {}, timeoutMs = 20_000) =>
      checkAccounting(source, {
        keys: { [id]: { answered: 1, recorded: ["req-1"], ...fields } },
        backends: { up: { answered: 1 } },
        timeoutMs,
      });
    const report = await check(); // waits for the lease to be returned
    const fails = (fields: Record<string, unknown>, message?: string) =>
      assertRejects(() => check(fields, 300), Error, message);
    assertEquals([report.records, report.tokens, report.lost], [1, answer.usage!.total_tokens, 0]);

    await fails({ answered: 2 }, "1 records missing, at most 0");
    await fails({ answered: 2, mayBeLost: 1, recorded: ["req-1", "req-2"] }, "without a record");
    await fails({ answered: 0, recorded: [] }, "1 records for 0");
    // Two records missing may be explained by two requests in flight at a kill; not three.
    await check({ answered: 3, mayBeLost: 2 });
    await fails({ answered: 4, mayBeLost: 2 }, "3 records missing, at most 2");

    const used = budgetKey(id, "tokens", null, "used");
    await kv.atomic().sum(used, 5n).commit();
    await fails({}, `key ${id}: used`);
    await kv.set(used, new Deno.KvU64(BigInt(answer.usage!.total_tokens)));

    const requests = aggregateKey("day", "key", id, bucketOf("day", Date.now()), "requests");
    await kv.atomic().sum(requests, 1n).commit();
    await fails({}, "aggregates by key per day");
    await kv.set(requests, new Deno.KvU64(1n));

    const ghost = leaseKey(id, "day_tokens", bucketOf("day", Date.now()), "ghost");
    await kv.set(ghost, { amount: 100, expires: Date.now() + 60_000 });
    await fails({}, "leases still held");
    await kv.set(ghost, { amount: 100, expires: Date.now() - 1 });
    await check(); // an expired lease (a dead instance's) no longer counts
  } finally {
    await gateway.shutdown();
    await fake.close();
    kv.close();
  }
});
