/**
 * The gateway's own per-request cost, without the network: requests are handed to the app
 * in-process and the backend is a function answering at once. `deno bench -A bench/pipeline_bench.ts`
 * (also run by `deno task bench --only pipeline`). What remains is the pipeline's JavaScript: key,
 * allowlist, limits, quota, routing, the codec, the ledger record. Compare the rows in one run.
 */
import { parseConfig } from "../src/config.ts";
import { silentLogger } from "../src/log.ts";
import { startGateway } from "../src/server.ts";
import { FULL_PIPELINE_LIMITS } from "./modelgate.ts";

const ANSWER = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1700000000,
  model: "bench-model",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "word ".repeat(20).trim() },
    finish_reason: "stop",
  }],
  usage: { prompt_tokens: 12, completion_tokens: 20, total_tokens: 32 },
});

/** A backend in the same process: answers every call at once. */
const backend: typeof fetch = (input) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (url.endsWith("/models")) {
    return Promise.resolve(Response.json({ object: "list", data: [{ id: "bench-model" }] }));
  }
  return Promise.resolve(
    new Response(ANSWER, {
      headers: { "content-type": "application/json", "content-length": String(ANSWER.length) },
    }),
  );
};

// The gateway checks that a cold backend accepts connections before calling it: a listener that
// accepts and does nothing else stands in for the backend's host.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
(async () => {
  for await (const conn of listener) conn.close();
})().catch(() => {});
const port = (listener.addr as Deno.NetAddr).port;

const config = parseConfig(
  `
server: { host: 127.0.0.1, port: 0 }
admin: { api_key: bench-admin-key }
storage: { kv: ":memory:" }
discovery: { interval_seconds: 0 }
backends:
  - { name: bench, type: vllm, base_url: "http://127.0.0.1:${port}", models: [bench-model] }
`,
  () => undefined,
);
const gateway = await startGateway({ config, log: silentLogger, fetch: backend });
const info = { remoteAddr: { hostname: "127.0.0.1", port: 40000 } };

async function createKey(fields: Record<string, unknown>): Promise<string> {
  const response = await gateway.handle(
    new Request("http://gw/admin/api/keys", {
      method: "POST",
      headers: { authorization: "Bearer bench-admin-key", "content-type": "application/json" },
      body: JSON.stringify({ name: "bench", ...fields }),
    }),
    info,
  );
  return (await response.json()).key;
}

const fullKey = await createKey(FULL_PIPELINE_LIMITS);
const bareKey = await createKey({});
const body = JSON.stringify({
  model: "bench-model",
  messages: [{ role: "user", content: "x".repeat(1024) }],
});

function chat(key: string): Promise<Response> {
  return Promise.resolve(gateway.handle(
    new Request("http://gw/v1/chat/completions", {
      method: "POST",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        "content-length": String(body.length),
      },
      body,
    }),
    info,
  ));
}

async function batch(key: string, concurrency: number) {
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const response = await chat(key);
      if (response.status !== 200) throw new Error(`status ${response.status}`);
      await response.arrayBuffer();
    }),
  );
}

Deno.bench("full pipeline (every limit, quota, allowlists), 1 KB chat, 8 at once", {
  group: "pipeline",
  baseline: true,
}, async () => {
  await batch(fullKey, 8);
});

Deno.bench("unlimited key, 1 KB chat, 8 at once", { group: "pipeline" }, async () => {
  await batch(bareKey, 8);
});

if (!import.meta.main) {
  globalThis.addEventListener("unload", () => {
    gateway.shutdown();
    listener.close();
  });
}

// `deno run -A bench/pipeline_bench.ts N`: N batches of the full pipeline, for a CPU profile.
if (import.meta.main) {
  const rounds = Number(Deno.args[0] ?? 2000);
  const started = performance.now();
  for (let i = 0; i < rounds; i++) await batch(fullKey, 8);
  const perRequest = (performance.now() - started) / rounds / 8;
  console.log(`${rounds * 8} requests, ${perRequest.toFixed(3)} ms each (wall, in-process)`);
  await gateway.shutdown();
  listener.close();
}
