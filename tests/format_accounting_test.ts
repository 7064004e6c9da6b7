/**
 * Every client format is billed the same way: the usage the backend reported for a complete
 * stream, the estimate for one cut short (client gone or backend failed), and the ledger says how
 * each ended.
 */
import { assert, assertEquals } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway, type TestGateway, waitFor } from "./helpers.ts";

type Format = {
  name: string;
  path: string;
  body: (model: string) => Record<string, unknown>;
};

const FORMATS: Format[] = [
  {
    name: "chat",
    path: "/v1/chat/completions",
    body: (model) => ({ model, stream: true, messages: [{ role: "user", content: "hi" }] }),
  },
  {
    name: "responses",
    path: "/v1/responses",
    body: (model) => ({ model, stream: true, input: "hi" }),
  },
  {
    name: "ollama_chat",
    path: "/api/chat",
    body: (model) => ({ model, messages: [{ role: "user", content: "hi" }] }),
  },
];

async function records(gateway: TestGateway, keyId: string) {
  const response = await gateway.admin("GET", `/requests?key=${keyId}`);
  return (await response.json()).data as Record<string, unknown>[];
}

Deno.test("accounting per format: complete, cancelled and failed streams are billed alike", async () => {
  const fake = await startFakeOpenAi({ models: ["gpt-test", "slow-stream", "die-midstream"] });
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test, slow-stream, die-midstream] }
`);
  try {
    for (const format of FORMATS) {
      const { key, id } = await gateway.createKey({ quota_tokens: 1_000_000 });
      const send = (model: string) =>
        fetch(`${gateway.url}${format.path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify(format.body(model)),
        });
      const complete = await send("gpt-test");
      assertEquals(complete.status, 200, format.name);
      await complete.text();
      const failed = await send("die-midstream");
      const failedText = await failed.text();
      assert(failedText.includes("error"), `${format.name}: the failure reaches the client`);
      const cancelled = await send("slow-stream");
      const reader = cancelled.body!.getReader();
      await reader.read();
      await reader.cancel();
      await waitFor(async () => (await records(gateway, id)).length === 3);
      const byModel = Object.fromEntries(
        (await records(gateway, id)).map((r) => [r.requested_model, r]),
      );
      assertEquals(byModel["gpt-test"].outcome, "completed", format.name);
      assertEquals(byModel["gpt-test"].usage_reported, true, `${format.name}: usage as reported`);
      assertEquals(byModel["gpt-test"].endpoint, format.name);
      assertEquals(byModel["die-midstream"].outcome, "upstream_error", format.name);
      assertEquals(byModel["slow-stream"].outcome, "client_cancelled", format.name);
      for (const cut of [byModel["die-midstream"], byModel["slow-stream"]]) {
        assertEquals(cut.usage_reported, false, `${format.name}: a cut stream is estimated`);
        assert(Number(cut.prompt_tokens) > 0, `${format.name}: the prompt estimate is charged`);
      }
      const used = (await (await gateway.admin("GET", `/keys/${id}`)).json()).usage.used_tokens;
      const charged = (await records(gateway, id)).reduce(
        (sum, r) => sum + Number(r.total_tokens),
        0,
      );
      assertEquals(used, charged, `${format.name}: the quota is charged what the ledger says`);
    }
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
