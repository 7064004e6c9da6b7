import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import OpenAI from "openai";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { readSse, startTestGateway, waitFor } from "./helpers.ts";

function gatewayFor(url: string, extra = "") {
  return startTestGateway(`
backends:
  - name: up
    type: vllm
    base_url: ${url}
    api_key: sk-upstream-secret-123
    models: [gpt-test, slow-stream, die-midstream, slow-first-byte, missing-upstream]
${extra}`);
}

const chat = (model: string, stream = true) =>
  JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }] });

Deno.test("stream: a client that disconnects cancels the backend's stream", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await gatewayFor(fake.url);
  try {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: chat("slow-stream"),
    });
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert(!first.done);
    await reader.cancel();
    await waitFor(() => fake.cancelled === 1);
    assertEquals(fake.cancelled, 1);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("stream: an upstream that dies mid-stream ends with one SSE error event", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await gatewayFor(fake.url);
  try {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: chat("die-midstream"),
    });
    assertEquals(response.status, 200);
    const events = await readSse(response);
    const last = JSON.parse(events.at(-1)!);
    assertEquals(last.error.code, "upstream_error");
    assertEquals(last.error.type, "api_error");
    assert(!events.includes("[DONE]"), "a failed stream must not look finished");
    assertEquals(events.filter((e) => e.includes('"error"')).length, 1);

    // The SDK surfaces it as an error, not as silent success.
    const client = gateway.client();
    let failed = false;
    try {
      const stream = await client.chat.completions.create({
        model: "die-midstream",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      for await (const _ of stream) { /* drain */ }
    } catch (err) {
      failed = err instanceof OpenAI.APIError;
    }
    assert(failed, "the SDK should raise an APIError for the error event");
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("stream: a backend silent for longer than idle_ms ends with an upstream_timeout event", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await gatewayFor(fake.url, "timeouts:\n  idle_ms: 20\n");
  try {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: chat("slow-stream"),
    });
    const events = await readSse(response);
    assertEquals(JSON.parse(events.at(-1)!).error.code, "upstream_timeout");
    await waitFor(() => fake.cancelled === 1);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("proxy: a backend that is down gives 502 without its address or credential", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const gateway = await gatewayFor(`http://127.0.0.1:${port}`);
  try {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: chat("gpt-test", false),
    });
    assertEquals(response.status, 502);
    const text = await response.text();
    const body = JSON.parse(text);
    assertEquals(body.error.code, "upstream_error");
    assert(!text.includes(String(port)), "the backend's address must not leak");
    assert(!text.includes("sk-upstream-secret-123"));
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("proxy: no response headers within first_byte_ms gives 504 upstream_timeout", async () => {
  const fake = await startFakeOpenAi({ models: ["slow-first-byte"], firstByteDelayMs: 1000 });
  const gateway = await gatewayFor(fake.url, "timeouts:\n  first_byte_ms: 50\n");
  try {
    const client = gateway.client();
    const err = await client.chat.completions.create({
      model: "slow-first-byte",
      messages: [{ role: "user", content: "hi" }],
    }).catch((e) => e);
    assert(err instanceof OpenAI.APIError, String(err));
    assertEquals(err.status, 504);
    assertEquals((err.error as Record<string, unknown>).code, "upstream_timeout");
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("proxy: a backend's own 4xx passes through in OpenAI shape; its 401 becomes 502", async () => {
  const fake = await startFakeOpenAi({ apiKey: "something-else" });
  const gateway = await gatewayFor(fake.url);
  try {
    const unauthorized = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: chat("gpt-test", false),
    });
    assertEquals(
      unauthorized.status,
      502,
      "the gateway's credential being refused is not the client's fault",
    );
    await unauthorized.body?.cancel();
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
  const fake2 = await startFakeOpenAi({ models: ["gpt-test"] });
  const gateway2 = await gatewayFor(fake2.url);
  try {
    const response = await fetch(`${gateway2.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway2.auth },
      body: chat("missing-upstream", false),
    });
    assertEquals(response.status, 404);
    const body = await response.json();
    assertEquals(body.error.code, "model_not_found");
    assertStringIncludes(body.error.message, "missing-upstream");
  } finally {
    await gateway2.shutdown();
    await fake2.close();
  }
});

Deno.test("proxy: client-sent api_base, base_url and forwarding headers never choose the upstream", async () => {
  const fake = await startFakeOpenAi();
  const decoy = await startFakeOpenAi();
  const gateway = await gatewayFor(fake.url);
  try {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...gateway.auth,
        "x-forwarded-host": new URL(decoy.url).host,
        host: new URL(decoy.url).host,
      },
      body: JSON.stringify({
        model: "gpt-test",
        messages: [{ role: "user", content: "hi" }],
        api_base: decoy.url,
        base_url: decoy.url,
      }),
    });
    assertEquals(response.status, 200);
    await response.body?.cancel();
    assertEquals(decoy.requests.length, 0);
    assertEquals(fake.requests.length, 1);
    assertEquals(fake.requests[0].path, "/v1/chat/completions");
    assertEquals(fake.requests[0].headers.get("authorization"), "Bearer sk-upstream-secret-123");
  } finally {
    await gateway.shutdown();
    await fake.close();
    await decoy.close();
  }
});

Deno.test("proxy: a model name with path characters never reaches the upstream URL", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await gatewayFor(fake.url);
  try {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: chat("../../admin?x=1#", false),
    });
    assertEquals(response.status, 404);
    await response.body?.cancel();
    assertEquals(fake.requests.length, 0);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("readyz: 503 while no backend answers discovery, 200 once one does", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = await startTestGateway(`
adapters:
  ollama:
    base_url: http://127.0.0.1:${port}
`);
  try {
    const response = await fetch(`${down.url}/readyz`);
    assertEquals(response.status, 503);
    assertEquals((await response.json()).status, "no_backend");
  } finally {
    await down.shutdown();
  }
  const fake = await startFakeOpenAi();
  const up = await gatewayFor(fake.url);
  try {
    const response = await fetch(`${up.url}/readyz`);
    assertEquals(response.status, 200);
    await response.body?.cancel();
  } finally {
    await up.shutdown();
    await fake.close();
  }
});

Deno.test("storage: KV away gives 503 storage_unavailable where a decision needs it, and a clean stop", async () => {
  const fake = await startFakeOpenAi();
  const kv = await Deno.openKv(":memory:");
  const gateway = await startTestGateway(
    `
server:
  shutdown_timeout_ms: 300
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`,
    { kv },
  );
  const post = (key: string, maxTokens: number) =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-test",
        max_tokens: maxTokens,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
  const used = await gateway.createKey({ quota_tokens: 1_000_000 });
  const idle = await gateway.createKey({});
  let stopMs = Infinity;
  const first = await post(used.key, 10);
  assertEquals(first.status, 200);
  await first.body?.cancel();
  kv.close();
  try {
    // A reservation larger than the instance's lease needs KV; so does a key not yet cached.
    for (const [key, maxTokens] of [[used.key, 900_000], [idle.key, 10]] as const) {
      const refused = await post(key, maxTokens);
      assertEquals(refused.status, 503);
      assertEquals(refused.headers.get("retry-after"), "1");
      const body = await refused.json();
      assertEquals([body.error.type, body.error.code], ["api_error", "storage_unavailable"]);
    }
    assert(gateway.logs.some((line) => line.includes('"status":503')), "logged with its cause");
  } finally {
    // The stop finishes although every store write fails, and says what it could not write.
    const stopping = performance.now();
    await gateway.shutdown();
    stopMs = performance.now() - stopping;
    await fake.close();
  }
  assert(gateway.logs.some((line) => line.includes("could not write")), gateway.logs.join("\n"));
  // Its retries are bounded by shutdown_timeout_ms (300 ms here), not the ledger's own 10 s.
  assert(stopMs < 5_000, `the stop took ${stopMs} ms`);
});
