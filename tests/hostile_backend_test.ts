/** A backend is untrusted input: stalls, floods, absurd numbers and leaks stay contained. */
import OpenAI from "openai";
import { assert, assertEquals } from "./assert.ts";
import { type HostileBackend, startHostileBackend } from "./fakes/hostile_backend.ts";
import { readSse, startTestGateway, type TestGateway, waitFor } from "./helpers.ts";
import { checkAccounting } from "./store/invariant.ts";

const MIB = 1024 * 1024;

async function withHostile(
  fn: (gateway: TestGateway, backend: HostileBackend) => Promise<void>,
) {
  const backend = await startHostileBackend({ hugeBytes: 3 * MIB });
  const gateway = await startTestGateway(`
server:
  max_response_bytes: ${MIB}
  max_stream_event_bytes: ${MIB}
timeouts:
  idle_ms: 300
routing:
  health: { failures_to_eject: 100 }
backends:
  - name: hostile
    type: vllm
    base_url: ${backend.url}
`);
  try {
    await fn(gateway, backend);
  } finally {
    await gateway.shutdown();
    await backend.close();
  }
}

function chat(
  gateway: TestGateway,
  model: string,
  extra: Record<string, unknown> = {},
  key?: string,
) {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${key ?? gateway.apiKey}`,
    },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], ...extra }),
  });
}

async function ledger(gateway: TestGateway, keyId: string) {
  const response = await gateway.admin("GET", `/requests?key=${keyId}`);
  return (await response.json()).data as Record<string, unknown>[];
}

Deno.test("hostile backend: a JSON answer that stalls after its headers ends in 504, frees the slot and is recorded", async () => {
  await withHostile(async (gateway) => {
    const { key, id } = await gateway.createKey({ max_concurrency: 1 });
    for (const model of ["stall-after-headers", "stall-declared", "stall-error"]) {
      const response = await chat(gateway, model, {}, key);
      const body = await response.json();
      assertEquals(response.status, model === "stall-error" ? 502 : 504, JSON.stringify(body));
      assertEquals(body.error.type, "api_error");
    }
    // The concurrency slot came back: a max_concurrency 1 key is not locked out.
    const next = await chat(gateway, "normal", {}, key);
    assertEquals(next.status, 200);
    await next.body?.cancel();
    const records = await ledger(gateway, id);
    assertEquals(records.length, 4);
    assertEquals(
      records.map((r) => r.outcome).sort(),
      ["completed", "timeout", "timeout", "upstream_error"].sort(),
    );
  });
});

Deno.test("hostile backend: a small JSON answer of declared length must arrive whole within idle_ms", async () => {
  await withHostile(async (gateway) => {
    const response = await chat(gateway, "trickle-declared");
    assertEquals(response.status, 504, "every pause is under idle_ms; the whole answer is not");
    assertEquals((await response.json()).error.code, "upstream_timeout");
  });
});

Deno.test("hostile backend: answers over max_response_bytes, plain or gzip, are a 502 and nothing else is hurt", async () => {
  await withHostile(async (gateway) => {
    for (const model of ["huge-json", "gzip-bomb"]) {
      const response = await chat(gateway, model);
      const body = await response.json();
      assertEquals(response.status, 502, model);
      assertEquals(body.error.code, "upstream_error");
    }
    const ok = await chat(gateway, "normal");
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).choices[0].message.content, "Hello there");
  });
});

Deno.test("hostile backend: an over-long SSE line or event ends the stream with one error event", async () => {
  await withHostile(async (gateway) => {
    for (const model of ["huge-line", "endless-event"]) {
      const response = await chat(gateway, model, { stream: true });
      assertEquals(response.status, 200);
      const events = await readSse(response);
      const last = JSON.parse(events.at(-1)!);
      assertEquals(last.error.code, "upstream_error", model);
      assert(!events.includes("[DONE]"));
    }
  });
});

Deno.test("hostile backend: absurd or inconsistent usage numbers never reach the books", async () => {
  await withHostile(async (gateway) => {
    const { key, id } = await gateway.createKey({ quota_tokens: 1_000_000 });
    for (const stream of [false, true]) {
      for (const model of ["absurd-usage", "zero-total"]) {
        const response = await chat(gateway, model, { stream }, key);
        assertEquals(response.status, 200);
        await response.text();
      }
    }
    const records = await ledger(gateway, id);
    assertEquals(records.length, 4);
    for (const record of records) {
      const total = Number(record.total_tokens);
      assertEquals(total, Number(record.prompt_tokens) + Number(record.completion_tokens));
      assert(total > 0 && total < 1000, `charged ${total} for ${record.model}`);
      assertEquals(record.usage_reported, record.model === "zero-total");
    }
    // Accounting of every key keeps working: the admin API answers and usage is written.
    const keyView = await (await gateway.admin("GET", `/keys/${id}`)).json();
    assertEquals(
      keyView.usage.used_tokens,
      records.reduce((sum, r) => sum + Number(r.total_tokens), 0),
    );
    await checkAccounting(gateway, { keys: { [id]: { answered: 4 } } });
  });
});

Deno.test("hostile backend: a mid-stream error event reaches the client in the gateway's words", async () => {
  await withHostile(async (gateway) => {
    const response = await chat(gateway, "error-event", { stream: true });
    const events = await readSse(response);
    assertEquals(events.length, 2);
    const error = JSON.parse(events[1]).error;
    assertEquals(error.code, "upstream_error");
    assertEquals(error.type, "api_error");
    assert(!error.message.includes("CUDA") && !error.message.includes("127.0.0.1"));
    let failed: unknown = null;
    try {
      const stream = await gateway.client().chat.completions.create({
        model: "error-event",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      for await (const _ of stream) { /* drain */ }
    } catch (err) {
      failed = err;
    }
    assert(failed instanceof OpenAI.APIError, "the SDK raises the error event");
  });
});

Deno.test("hostile backend: bare-CR streams are metered and the usage chunk stays hidden", async () => {
  await withHostile(async (gateway) => {
    const { key, id } = await gateway.createKey({});
    const response = await chat(gateway, "cr-stream", { stream: true }, key);
    const text = await response.text();
    assert(!text.includes('"usage"'), text);
    const [record] = await ledger(gateway, id);
    assertEquals(record.outcome, "completed");
    assertEquals([record.prompt_tokens, record.completion_tokens], [7, 2]);
  });
});

Deno.test("hostile backend: a 4xx message never shows the backend's address in any form", async () => {
  await withHostile(async (gateway, backend) => {
    const response = await chat(gateway, "leaky-error");
    const body = await response.json();
    assertEquals(response.status, 400);
    const message: string = body.error.message;
    assert(message.startsWith("model not loaded on worker"), message);
    for (const leak of ["127.0.0.1", String(backend.port), "::1", "localhost", "http://"]) {
      assert(!message.includes(leak), `${leak} leaked in: ${message}`);
    }
    // The raw text stays in the log for the operator.
    assert(gateway.logs.some((line) => line.includes(`port ${backend.port}`)));
  });
});

Deno.test("hostile backend: a backend's 4xx message reaches the client on one line of at most 500 characters", async () => {
  await withHostile(async (gateway) => {
    const response = await chat(gateway, "long-error");
    assertEquals(response.status, 400);
    const message: string = (await response.json()).error.message;
    assert(message.startsWith("bad input bad input"), message.slice(0, 50));
    assert(!message.includes("\n"), "one line");
    assertEquals(message.length, 501, "500 characters and an ellipsis");
    assert(message.endsWith("…"));
  });
});

Deno.test("hostile backend: routing-like fields a client sends are never forwarded", async () => {
  await withHostile(async (gateway, backend) => {
    const fields = {
      api_base: "http://evil.example",
      base_url: "http://evil.example",
      api_key: "sk-stolen",
      api_version: "2099-01-01",
      organization: "org-x",
      extra_headers: { "x-target": "evil" },
      extra_query: { target: "evil" },
      extra_body: { target: "evil" },
      temperature: 0.5,
    };
    const bodies: Record<string, Record<string, unknown>> = {
      "/v1/chat/completions": { messages: [{ role: "user", content: "hi" }] },
      "/v1/completions": { prompt: "hi" },
      "/v1/embeddings": { input: "hi" },
      // Translated to a chat request for this backend.
      "/v1/responses": { input: "hi" },
    };
    for (const [path, body] of Object.entries(bodies)) {
      const response = await fetch(`${gateway.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...gateway.auth },
        body: JSON.stringify({ model: "normal", ...body, ...fields }),
      });
      assertEquals(response.status, 200, path);
      await response.body?.cancel();
      const sent = backend.bodies.at(-1)!;
      assertEquals(sent.temperature, 0.5, path);
      for (const field of Object.keys(fields).filter((f) => f !== "temperature")) {
        assert(!(field in sent), `${field} was forwarded on ${path}`);
      }
    }
  });
});

Deno.test("hostile backend: a client that leaves stops the backend's work while waiting for headers or reading JSON", async () => {
  await withHostile(async (gateway, backend) => {
    for (const model of ["no-headers", "stall-after-headers", "stall-declared"]) {
      const aborter = new AbortController();
      const pending = fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...gateway.auth },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
        signal: aborter.signal,
      }).catch(() => null);
      await new Promise((resolve) => setTimeout(resolve, 100));
      aborter.abort();
      await pending;
    }
    await waitFor(() => backend.abandoned === 1 && backend.cancelled === 2);
  });
});

Deno.test("hostile backend: an answer that fails after its headers is not retried on another backend", async () => {
  const one = await startHostileBackend();
  const two = await startHostileBackend();
  const gateway = await startTestGateway(`
timeouts:
  idle_ms: 200
routing:
  retries: 2
backends:
  - { name: one, type: vllm, base_url: "${one.url}" }
  - { name: two, type: vllm, base_url: "${two.url}" }
`);
  try {
    const response = await chat(gateway, "stall-declared");
    assertEquals(response.status, 504);
    await response.body?.cancel();
    assertEquals(one.bodies.length + two.bodies.length, 1, "sent once, never twice");
  } finally {
    await gateway.shutdown();
    await one.close();
    await two.close();
  }
});
