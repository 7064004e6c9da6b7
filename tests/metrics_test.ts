import { assert } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { ADMIN_KEY, startTestGateway } from "./helpers.ts";

Deno.test("metrics: each proxied request is counted with its tokens and latency, by endpoint, backend and outcome", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
  try {
    const client = gateway.client();
    for (let i = 0; i < 2; i++) {
      await client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "hi" }],
      });
    }
    const text = await (await fetch(`${gateway.url}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })).text();
    const labels = 'endpoint="chat",backend="up",outcome="completed"';
    assert(text.includes(`modelgate_requests_total{${labels},status="200"} 2`), text);
    const completion = new RegExp(`modelgate_tokens_total\\{${labels},kind="completion"\\} (\\d+)`)
      .exec(text);
    assert(completion && Number(completion[1]) > 0, "completion tokens are counted");
    assert(text.includes('modelgate_request_duration_ms_count{endpoint="chat"} 2'), text);
    assert(/process_resident_memory_bytes \d+/.test(text));
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
