/** Reservations cover every answer a request may produce; prices follow the model that served. */
import { assert, assertEquals } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway, type TestGateway } from "./helpers.ts";
import { checkAccounting } from "./store/invariant.ts";

async function withGateway(fn: (gateway: TestGateway, requests: () => number) => Promise<void>) {
  const fake = await startFakeOpenAi({ models: ["gpt-test", "embed-test"] });
  const gateway = await startTestGateway(`
backends:
  - name: up
    type: vllm
    base_url: ${fake.url}
    models: [gpt-test, embed-test]
models:
  gpt-test:
    aliases: [cheap-alias]
    price: { input: 1000000, output: 2000000 }
  ghost:
    fallbacks: [gpt-test]
  ghost-of-alias:
    fallbacks: [cheap-alias]
`);
  try {
    await fn(gateway, () => fake.requests.filter((r) => r.method === "POST").length);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
}

async function post(gateway: TestGateway, path: string, key: string, body: unknown) {
  const response = await fetch(`${gateway.url}/v1${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const messages = [{ role: "user", content: "hi" }];

Deno.test("quota: n answers and prompt lists reserve every answer they may produce", async () => {
  await withGateway(async (gateway, upstream) => {
    const { key, id } = await gateway.createKey({ quota_tokens: 1000 });
    const many = await post(gateway, "/chat/completions", key, {
      model: "gpt-test",
      messages,
      n: 20,
      max_tokens: 100,
      stream: true,
    });
    assertEquals(many.status, 429);
    assertEquals(many.body.error.code, "insufficient_quota");
    const prompts = await post(gateway, "/completions", key, {
      model: "gpt-test",
      prompt: Array.from({ length: 50 }, (_, i) => `prompt ${i}`),
      max_tokens: 100,
    });
    assertEquals(prompts.status, 429);
    const bestOf = await post(gateway, "/completions", key, {
      model: "gpt-test",
      prompt: "one",
      n: 2,
      best_of: 15,
      max_tokens: 100,
    });
    assertEquals(bestOf.status, 429, "best_of answers are generated, so reserved");
    assertEquals(upstream(), 0, "nothing reached the backend");
    // The same requests within the quota are served.
    const fits = await post(gateway, "/chat/completions", key, {
      model: "gpt-test",
      messages,
      n: 5,
      max_tokens: 100,
    });
    assertEquals(fits.status, 200);
    const badN = await post(gateway, "/chat/completions", key, {
      model: "gpt-test",
      messages,
      n: 0,
    });
    assertEquals([badN.status, badN.body.error.param], [400, "n"]);
    await checkAccounting(gateway, { keys: { [id]: { answered: 1, overrun: 0 } } });
  });
});

Deno.test("quota: a key at or over its quota is refused whatever its request would cost", async () => {
  await withGateway(async (gateway, upstream) => {
    const { key, id } = await gateway.createKey({ quota_tokens: 10 });
    // Estimated at 6 tokens, charged 12 as the backend reports: the key ends over its quota.
    const over = await post(gateway, "/embeddings", key, {
      model: "embed-test",
      input: ["a b c d e f g h i j k l"],
    });
    assertEquals(over.status, 200);
    assertEquals(over.body.usage.prompt_tokens, 12);
    const chat = await post(gateway, "/chat/completions", key, { model: "gpt-test", messages });
    assertEquals(chat.status, 429);
    const sent = upstream();
    for (let i = 0; i < 5; i++) {
      const empty = await post(gateway, "/embeddings", key, {
        model: "embed-test",
        input: Array.from({ length: 100 }, () => ""),
      });
      assertEquals(empty.status, 429, "zero-estimate requests do not pass an exhausted quota");
      assertEquals(empty.body.error.code, "insufficient_quota");
    }
    assertEquals(upstream(), sent);
    await checkAccounting(gateway, { keys: { [id]: { answered: 1 } } });
  });
});

Deno.test("quota: aliases and fallbacks are priced and aggregated as the model that served them", async () => {
  await withGateway(async (gateway) => {
    const { key, id } = await gateway.createKey({});
    const costs: Record<string, number> = {};
    for (const model of ["gpt-test", "cheap-alias", "ghost", "ghost-of-alias"]) {
      const answer = await post(gateway, "/chat/completions", key, { model, messages });
      assertEquals(answer.status, 200, `${model}: ${JSON.stringify(answer.body)}`);
    }
    const records = (await (await gateway.admin("GET", `/requests?key=${id}`)).json()).data;
    assertEquals(records.length, 4);
    for (const record of records) {
      assertEquals(record.model, "gpt-test", "the ledger names the model that served");
      costs[record.requested_model] = record.cost;
      assert(record.cost > 0, `${record.requested_model} was priced at 0`);
    }
    assertEquals(new Set(Object.values(costs)).size, 1, JSON.stringify(costs));
    const usage = await (await gateway.admin("GET", "/usage?by=model")).json();
    assertEquals(usage.data.map((row: { subject: string }) => row.subject), ["gpt-test"]);
    assertEquals(usage.data[0].requests, 4);
    await checkAccounting(gateway, { keys: { [id]: { answered: 4 } } });
  });
});
