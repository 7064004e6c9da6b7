import { assert, assertEquals } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway } from "./helpers.ts";

let auth: Record<string, string> = {};

async function withGateway(fn: (url: string, requests: () => number) => Promise<void>) {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
server:
  max_body_bytes: 2048
backends:
  - name: up
    type: vllm
    base_url: ${fake.url}
    models: [gpt-test]
`);
  auth = gateway.auth;
  try {
    await fn(gateway.url, () => fake.requests.length);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
}

async function post(url: string, body: BodyInit, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth, ...headers },
    body,
  });
  return { status: response.status, body: await response.json() };
}

const CASES: [string, string, number, string | null][] = [
  ["invalid JSON", "{not json", 400, null],
  ["a JSON array", "[1,2]", 400, null],
  ["an empty body", "", 400, null],
  ["no model", JSON.stringify({ messages: [{ role: "user", content: "x" }] }), 400, "model"],
  ["a numeric model", JSON.stringify({ model: 5, messages: [] }), 400, "model"],
  ["no messages", JSON.stringify({ model: "gpt-test" }), 400, "messages"],
  ["messages not an array", JSON.stringify({ model: "gpt-test", messages: "hi" }), 400, "messages"],
  [
    "a message without role",
    JSON.stringify({ model: "gpt-test", messages: [{ content: "x" }] }),
    400,
    "messages[0].role",
  ],
  [
    "stream as a string",
    JSON.stringify({
      model: "gpt-test",
      stream: "yes",
      messages: [{ role: "user", content: "x" }],
    }),
    400,
    "stream",
  ],
  [
    "max_tokens negative",
    JSON.stringify({
      model: "gpt-test",
      max_tokens: -1,
      messages: [{ role: "user", content: "x" }],
    }),
    400,
    "max_tokens",
  ],
  [
    "an unknown model",
    JSON.stringify({ model: "nope", messages: [{ role: "user", content: "x" }] }),
    404,
    "model",
  ],
];

for (const [name, body, status, param] of CASES) {
  Deno.test(`bad input: ${name} gets ${status} with param ${param}`, async () => {
    await withGateway(async (url, upstreamRequests) => {
      const response = await post(url, body);
      assertEquals(response.status, status);
      assertEquals(typeof response.body.error.message, "string");
      assertEquals(response.body.error.type, "invalid_request_error");
      assertEquals(response.body.error.param, param);
      assertEquals(upstreamRequests(), 0, "a bad request never reaches a backend");
    });
  });
}

Deno.test("bad input: a body over max_body_bytes gets 413, with or without Content-Length", async () => {
  await withGateway(async (url, upstreamRequests) => {
    const big = JSON.stringify({
      model: "gpt-test",
      messages: [{ role: "user", content: "x".repeat(5000) }],
    });
    const declared = await post(url, big);
    assertEquals(declared.status, 413);
    assertEquals(declared.body.error.code, "request_too_large");

    // A chunked body has no Content-Length: the limit must still hold.
    const bytes = new TextEncoder().encode(big);
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 500) controller.enqueue(bytes.slice(i, i + 500));
        controller.close();
      },
    });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: chunked,
    });
    assertEquals(response.status, 413);
    assertEquals((await response.json()).error.code, "request_too_large");
    assertEquals(upstreamRequests(), 0);
  });
});

Deno.test("bad input: unknown routes get a 404 in OpenAI's error shape", async () => {
  await withGateway(async (url) => {
    const response = await fetch(`${url}/v1/nothing-here`, { headers: auth });
    assertEquals(response.status, 404);
    const body = await response.json();
    assertEquals(body.error.type, "invalid_request_error");
  });
});

Deno.test("bad input: a hostile x-request-id is replaced, never echoed", async () => {
  await withGateway(async (url) => {
    const response = await fetch(`${url}/v1/models`, {
      headers: { "x-request-id": 'a"b<script>' },
    });
    await response.body?.cancel();
    const id = response.headers.get("x-request-id") ?? "";
    assert(/^[0-9a-f-]{36}$/.test(id), id);
  });
});
