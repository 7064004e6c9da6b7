/**
 * The floors of any gateway on this runtime: Deno.serve plus fetch to one backend, nothing else.
 * `deno run -A bench/bare_proxy.ts PORT TARGET_URL [transform|json|record]`. Prints `READY <port>`.
 *
 * - `transform`: responses pass through an identity TransformStream: the cost of touching a
 *   stream in JavaScript at all, which any metering gateway pays.
 * - `json`: the request body is parsed and serialised again before it is forwarded: what any
 *   gateway that reads `model` must do.
 * - `record`: `json`, plus what a gateway that answers as OpenAI does and records every request
 *   cannot skip: the answer is read and parsed (for its usage) and sent on as its bytes with
 *   OpenAI's `x-request-id` and six `x-ratelimit-*` headers, and each request leaves a usage
 *   record and a per-key index entry in Deno KV (written in one atomic batch per 100 ms) and an
 *   access line (written in batches, to /dev/null). No key, limit, quota or routing.
 */
const [portArg = "0", target = "http://127.0.0.1:8000", mode = ""] = Deno.args;

interface Recorded {
  /** Time-ordered, so records are appended to KV's index rather than inserted at random. */
  id: string;
  key: string;
  model: string;
  prompt: number;
  completion: number;
  ms: number;
}

const RECORD_TTL_MS = 86_400_000;
const queue: Recorded[] = [];
const lines: string[] = [];
let kv: Deno.Kv | null = null;
if (mode === "record") {
  kv = await Deno.openKv(await Deno.makeTempFile({ suffix: ".kv" }));
  const sink = await Deno.open("/dev/null", { write: true });
  const encoder = new TextEncoder();
  setInterval(async () => {
    for (let start = 0; start < queue.length; start += 400) {
      const op = kv!.atomic();
      for (const r of queue.slice(start, start + 400)) {
        op.set(["usage", r.id], r, { expireIn: RECORD_TTL_MS });
        op.set(["usage_by_key", r.key, r.id], r.id, { expireIn: RECORD_TTL_MS });
      }
      await op.commit();
    }
    queue.length = 0;
  }, 100);
  setInterval(() => {
    if (lines.length === 0) return;
    sink.writeSync(encoder.encode(lines.join("\n") + "\n"));
    lines.length = 0;
  }, 20);
}
const decoder = new TextDecoder();
let sequence = 0;

async function recorded(request: Request, url: URL): Promise<Response> {
  const started = performance.now();
  const requestId = crypto.randomUUID();
  const id = `${Date.now().toString(36)}-${(sequence++).toString(36).padStart(8, "0")}`;
  const body = JSON.parse(await request.text());
  const upstream = await fetch(target + url.pathname + url.search, {
    method: request.method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const bytes = await upstream.bytes();
  const usage = JSON.parse(decoder.decode(bytes)).usage ?? {};
  const record: Recorded = {
    id,
    key: "bench",
    model: String(body.model),
    prompt: usage.prompt_tokens ?? 0,
    completion: usage.completion_tokens ?? 0,
    ms: Math.round(performance.now() - started),
  };
  queue.push(record);
  lines.push(JSON.stringify({ time: new Date().toISOString(), message: "request", ...record }));
  return new Response(bytes, {
    status: upstream.status,
    headers: [
      ["content-type", "application/json"],
      ["x-request-id", requestId],
      ["x-ratelimit-limit-requests", "1000000"],
      ["x-ratelimit-remaining-requests", "999999"],
      ["x-ratelimit-reset-requests", "1ms"],
      ["x-ratelimit-limit-tokens", "1000000000"],
      ["x-ratelimit-remaining-tokens", "999999000"],
      ["x-ratelimit-reset-tokens", "1ms"],
    ],
  });
}

const server = Deno.serve(
  { hostname: "127.0.0.1", port: Number(portArg), onListen() {} },
  async (request) => {
    const url = new URL(request.url);
    if (mode === "record" && request.method === "POST") return await recorded(request, url);
    const body = mode === "json" && request.body
      ? JSON.stringify(JSON.parse(await request.text()))
      : request.body;
    const upstream = await fetch(target + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
      body,
    });
    const answer = mode === "transform" && upstream.body
      ? upstream.body.pipeThrough(new TransformStream())
      : upstream.body;
    return new Response(answer, { status: upstream.status, headers: upstream.headers });
  },
);
console.log(`READY ${(server.addr as Deno.NetAddr).port}`);
