/**
 * A hostile OpenAI-compatible backend: a real HTTP server on loopback whose models misbehave the
 * ways real servers and attackers do. The model name picks the fault:
 *
 * - `stall-after-headers`: 200 and the start of a JSON body, then silence
 * - `stall-declared`: the same with a declared `Content-Length` the body never reaches
 * - `trickle-declared`: a JSON answer of declared length sent a byte every 100 ms
 * - `stall-error`: 500 and the start of an error body, then silence
 * - `huge-json`: a valid JSON answer of `hugeBytes` bytes
 * - `gzip-bomb`: a small gzip body that inflates to `hugeBytes` bytes
 * - `huge-line`: a stream whose one `data:` line is `hugeBytes` long, without a line break
 * - `endless-event`: a stream of `data:` lines that never ends its event
 * - `absurd-usage`: usage of 18446744073709551615 prompt tokens (streamed and not)
 * - `zero-total`: usage whose `total_tokens` is 0 although prompt and completion are not
 * - `leaky-error`: a 400 whose message names the backend's own host and port in several forms
 * - `long-error`: a 400 whose message is 5,000 characters over several lines
 * - `error-event`: a stream that sends one chunk, then an error event with the backend's text
 * - `cr-stream`: a stream with bare-CR line endings and a usage chunk
 * - `no-headers`: never answers; counts the requests whose caller gave up (`abandoned`)
 * - anything else: a normal answer (and the body is recorded)
 */

/** A running hostile backend. */
export interface HostileBackend {
  url: string;
  port: number;
  /** Bodies of the requests received, in order. */
  bodies: Record<string, unknown>[];
  /** Streams the gateway cancelled or abandoned. */
  readonly cancelled: number;
  /** `no-headers` requests whose caller closed the connection while waiting. */
  readonly abandoned: number;
  close(): Promise<void>;
}

/** Models the fake serves. */
export const HOSTILE_MODELS = [
  "normal",
  "stall-after-headers",
  "stall-declared",
  "trickle-declared",
  "stall-error",
  "huge-json",
  "gzip-bomb",
  "huge-line",
  "endless-event",
  "absurd-usage",
  "zero-total",
  "leaky-error",
  "long-error",
  "error-event",
  "cr-stream",
  "no-headers",
];

const encoder = new TextEncoder();
const ABSURD = "18446744073709551615";

/** Starts the hostile backend on a free loopback port. */
export function startHostileBackend(options: { hugeBytes?: number } = {}): Promise<HostileBackend> {
  const hugeBytes = options.hugeBytes ?? 3 * 1024 * 1024;
  const bodies: Record<string, unknown>[] = [];
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const state = { cancelled: 0, abandoned: 0 };
  const waiting = new Set<() => void>();
  let port = 0;

  /** A stream that sends `first`, then nothing until the client or close() ends it. */
  const hanging = (first: string) => {
    let self: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        open.add(controller);
        controller.enqueue(encoder.encode(first));
      },
      cancel() {
        state.cancelled++;
        open.delete(self);
      },
    });
  };

  /** `total` bytes made of `unit` repeated, produced lazily. */
  const repeated = (prefix: string, unit: string, total: number, suffix = "") => {
    let sent = 0;
    const block = encoder.encode(unit.repeat(Math.ceil(65_536 / unit.length)));
    let head = true;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (head) {
          head = false;
          return controller.enqueue(encoder.encode(prefix));
        }
        if (sent >= total) {
          if (suffix) controller.enqueue(encoder.encode(suffix));
          return controller.close();
        }
        const piece = block.subarray(0, Math.min(block.length, total - sent));
        sent += piece.length;
        controller.enqueue(piece);
      },
      cancel() {
        state.cancelled++;
      },
    });
  };

  const handler = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/v1/models") {
      return Response.json({
        object: "list",
        data: HOSTILE_MODELS.map((id) => ({ id, object: "model", created: 1, owned_by: "x" })),
      });
    }
    const body = await request.json().catch(() => ({})) as Record<string, unknown>;
    bodies.push(body);
    const model = String(body.model);
    const stream = body.stream === true;
    const sse = { "content-type": "text/event-stream" };
    switch (model) {
      case "no-headers":
        await new Promise<void>((resolve) => {
          const done = () => {
            waiting.delete(done);
            resolve();
          };
          waiting.add(done);
          request.signal.addEventListener("abort", () => {
            state.abandoned++;
            done();
          });
        });
        return new Response("late", { status: 500 });
      case "stall-after-headers":
        return new Response(hanging('{"id":"chatcmpl-1","choices":['), {
          headers: { "content-type": "application/json" },
        });
      case "stall-declared":
        return new Response(hanging('{"id":"chatcmpl-1","choices":['), {
          headers: { "content-type": "application/json", "content-length": "4096" },
        });
      case "trickle-declared": {
        const text = '{"id":"x","choices":[]}';
        let sent = 0;
        const trickle = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent === text.length) return controller.close();
            if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 100));
            controller.enqueue(encoder.encode(text[sent++]));
          },
          cancel() {
            state.cancelled++;
          },
        });
        return new Response(trickle, {
          headers: { "content-type": "application/json", "content-length": String(text.length) },
        });
      }
      case "stall-error":
        return new Response(hanging('{"error":{"message":"over'), {
          status: 500,
          headers: { "content-type": "application/json" },
        });
      case "huge-json":
        return new Response(
          repeated('{"id":"x","object":"chat.completion","padding":"', "a", hugeBytes, '"}'),
          { headers: { "content-type": "application/json" } },
        );
      case "gzip-bomb": {
        const zeros = repeated('{"padding":"', "0", hugeBytes, '"}');
        const gzip = new CompressionStream("gzip") as unknown as TransformStream<
          Uint8Array,
          Uint8Array
        >;
        return new Response(zeros.pipeThrough(gzip), {
          headers: { "content-type": "application/json", "content-encoding": "gzip" },
        });
      }
      case "huge-line":
        return new Response(repeated('data: {"choices":[{"delta":{"content":"', "x", hugeBytes), {
          headers: sse,
        });
      case "endless-event":
        return new Response(
          repeated("", 'data: {"choices":[{"delta":{"content":"y"}}]}\n', hugeBytes),
          { headers: sse },
        );
      case "leaky-error": {
        const message =
          `model not loaded on worker 127.0.0.1 (host 127.0.0.1, port ${port}); see http://127.0.0.1:${port}/v1/status or [::1]:${port} or localhost:${port}`;
        return Response.json({ error: { message, type: "invalid_request_error" } }, {
          status: 400,
        });
      }
      case "long-error":
        return Response.json({ error: { message: "bad input\n".repeat(500) } }, { status: 400 });
      case "error-event":
        return new Response(
          chunk("a") +
            'data: {"error":{"message":"CUDA out of memory on 127.0.0.1","type":"server_error"}}\n\n',
          { headers: sse },
        );
      case "cr-stream":
        return new Response(
          (chunk("a") + usageChunk("7", "2", "9") + "data: [DONE]\n\n").replaceAll("\n", "\r"),
          { headers: sse },
        );
    }
    const [prompt, completion, total] = model === "absurd-usage"
      ? [ABSURD, "3", "0"]
      : model === "zero-total"
      ? ["5", "3", "0"]
      : ["5", "3", "8"];
    if (stream) {
      return new Response(
        chunk("Hello") + chunk(" there") + usageChunk(prompt, completion, total) +
          "data: [DONE]\n\n",
        { headers: sse },
      );
    }
    return new Response(
      `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"${model}","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${total}}}`,
      { headers: { "content-type": "application/json" } },
    );
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  port = (server.addr as Deno.NetAddr).port;
  return Promise.resolve({
    url: `http://127.0.0.1:${port}`,
    port,
    bodies,
    get cancelled() {
      return state.cancelled;
    },
    get abandoned() {
      return state.abandoned;
    },
    async close() {
      for (const wake of [...waiting]) wake();
      for (const controller of open) {
        try {
          controller.close();
        } catch {
          // Already closed.
        }
      }
      open.clear();
      await server.shutdown();
    },
  });
}

function chunk(text: string): string {
  return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"${text}"},"finish_reason":null}]}\n\n`;
}

function usageChunk(prompt: string, completion: string, total: string): string {
  return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${total}}}\n\n`;
}
