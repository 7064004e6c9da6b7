/**
 * Malformed values at every field of every endpoint's body, and at path parameters: the answer is
 * a 4xx in OpenAI's error shape (or a success the backend chose), never a 500, and the gateway
 * stays up. Table-driven: every field is tried with every hostile value.
 */
import { assert, assertEquals } from "./assert.ts";
import { startFakeOllama } from "./fakes/ollama_backend.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway, type TestGateway } from "./helpers.ts";

type Json = Record<string, unknown>;

const deep = (depth: number): unknown => {
  let value: unknown = "x";
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

/** Values that have broken parsers somewhere. */
export const HOSTILE_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  "",
  "x".repeat(20_000),
  "\u0000\ud800",
  [],
  {},
  [null],
  [5],
  [{}],
  [[]],
  { a: { b: { c: null } } },
  deep(5_000),
  { __proto__: { polluted: true } },
  { toString: "x", valueOf: 1 },
];

/** A valid body per endpoint, and the field paths to break in it. */
const ENDPOINTS: { path: string; body: (model: string) => Json; fields: string[] }[] = [
  {
    path: "/v1/chat/completions",
    body: (model) => ({
      model,
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f", parameters: {} } }],
    }),
    fields: [
      "model",
      "messages",
      "messages.0",
      "messages.0.role",
      "messages.0.content",
      "messages.0.tool_calls",
      "messages.0.content.0",
      "stream",
      "stream_options",
      "stream_options.include_usage",
      "max_tokens",
      "max_completion_tokens",
      "n",
      "tools",
      "tools.0",
      "tools.0.function",
      "response_format",
      "stop",
      "temperature",
    ],
  },
  {
    path: "/v1/completions",
    body: (model) => ({ model, prompt: "hi" }),
    fields: ["model", "prompt", "prompt.0", "stream", "max_tokens", "n", "best_of", "suffix"],
  },
  {
    path: "/v1/embeddings",
    body: (model) => ({ model, input: "hi" }),
    fields: ["model", "input", "input.0", "encoding_format", "dimensions"],
  },
  {
    path: "/v1/responses",
    body: (model) => ({
      model,
      input: [{ role: "user", content: [{ type: "input_text", text: "hi" }] }],
      tools: [{ type: "function", name: "f", parameters: {} }],
    }),
    fields: [
      "model",
      "input",
      "input.0",
      "input.0.role",
      "input.0.content",
      "input.0.content.0",
      "input.0.content.0.type",
      "instructions",
      "tools",
      "tools.0",
      "tools.0.parameters",
      "tool_choice",
      "text",
      "text.format",
      "max_output_tokens",
      "reasoning",
      "stream",
      "store",
      "metadata",
      "previous_response_id",
    ],
  },
  {
    path: "/api/chat",
    body: (model) => ({ model, messages: [{ role: "user", content: "hi" }], stream: false }),
    fields: [
      "model",
      "messages",
      "messages.0",
      "messages.0.role",
      "messages.0.content",
      "messages.0.images",
      "messages.0.tool_calls",
      "options",
      "options.num_predict",
      "options.temperature",
      "options.stop",
      "format",
      "tools",
      "stream",
      "think",
      "keep_alive",
    ],
  },
  {
    path: "/api/generate",
    body: (model) => ({ model, prompt: "hi", stream: false }),
    fields: ["prompt", "system", "images", "options", "format", "raw", "template", "context"],
  },
  {
    path: "/api/embed",
    body: (model) => ({ model, input: "hi" }),
    fields: ["model", "input", "input.0", "truncate", "dimensions", "options"],
  },
  {
    path: "/api/show",
    body: (model) => ({ model }),
    fields: ["model", "name"],
  },
];

/** Sets the value at a dotted path, creating containers on the way. */
function setPath(body: Json, path: string, value: unknown): Json {
  const copy = structuredClone(body);
  const parts = path.split(".");
  let node: Record<string, unknown> = copy;
  for (const part of parts.slice(0, -1)) {
    let next = node[part];
    if (!next || typeof next !== "object") {
      next = {};
      node[part] = next;
    }
    node = next as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
  return copy;
}

async function expectNo500(gateway: TestGateway, method: string, path: string, body?: string) {
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...gateway.auth },
    body,
  });
  const text = await response.text();
  const where = `${method} ${path} ${body?.slice(0, 200) ?? ""}`;
  assert(response.status !== 500, `500 for ${where}: ${text.slice(0, 300)}`);
  if (response.status >= 400 && response.status !== 502) {
    const parsed = JSON.parse(text);
    if (path.startsWith("/api/")) {
      assertEquals(typeof parsed.error, "string", `Ollama's shape for ${where}`);
    } else {
      assertEquals(typeof parsed.error?.message, "string", where);
      assertEquals(typeof parsed.error?.type, "string", where);
    }
  }
  return response.status;
}

Deno.test("fuzz: hostile values in every body field of every endpoint never give a 500", async () => {
  const ollama = await startFakeOllama();
  const vllm = await startFakeOpenAi({ models: ["gpt-test", "embed-test"] });
  const gateway = await startTestGateway(`
backends:
  - { name: ollama, type: ollama, base_url: "${ollama.url}" }
  - { name: vllm, type: vllm, base_url: "${vllm.url}", models: [gpt-test, embed-test] }
`);
  try {
    const chat = ["llama3.2:1b", "gpt-test"];
    const embed = ["nomic-embed-text", "embed-test"];
    const models: Record<string, string[]> = {
      "/v1/chat/completions": chat,
      "/v1/completions": chat,
      "/v1/embeddings": embed,
      "/v1/responses": chat,
      "/api/chat": chat,
      "/api/generate": chat,
      "/api/embed": embed,
      "/api/show": chat,
    };
    let requests = 0;
    for (const endpoint of ENDPOINTS) {
      for (const model of models[endpoint.path]) {
        for (const field of endpoint.fields) {
          for (const value of HOSTILE_VALUES) {
            const body = JSON.stringify(setPath(endpoint.body(model), field, value));
            await expectNo500(gateway, "POST", endpoint.path, body);
            requests++;
          }
        }
      }
    }
    assert(requests > 1000, `only ${requests} cases`);
    const healthy = await fetch(`${gateway.url}/healthz`);
    assertEquals(healthy.status, 200);
    await healthy.body?.cancel();
  } finally {
    await gateway.shutdown();
    await ollama.close();
    await vllm.close();
  }
});

Deno.test("fuzz: malformed path parameters and query strings never give a 500", async () => {
  const vllm = await startFakeOpenAi({ models: ["gpt-test"] });
  const gateway = await startTestGateway(`
backends:
  - { name: vllm, type: vllm, base_url: "${vllm.url}", models: [gpt-test] }
`);
  try {
    const segments = [
      "%E0%A4%A",
      "%25E0",
      "%",
      "%00",
      "..%2F..%2Fetc",
      "a%2Fb",
      "%F0%9F%99",
      "x".repeat(5000),
    ];
    for (const segment of segments) {
      const status = await expectNo500(gateway, "GET", `/v1/models/${segment}`);
      assert(status === 400 || status === 404, `${segment}: ${status}`);
      await expectNo500(gateway, "GET", `/admin/api/keys/${segment}`);
      await expectNo500(gateway, "GET", `/admin/api/requests?limit=${segment}&cursor=${segment}`);
      await expectNo500(gateway, "GET", `/admin/api/usage?from=${segment}&to=${segment}`);
    }
    for (const limit of ["1e999", "-1", "0", "99999999999999999999", "NaN"]) {
      await expectNo500(gateway, "GET", `/admin/api/keys?limit=${limit}`);
      await expectNo500(gateway, "GET", `/admin/api/audit?limit=${limit}`);
    }
  } finally {
    await gateway.shutdown();
    await vllm.close();
  }
});
