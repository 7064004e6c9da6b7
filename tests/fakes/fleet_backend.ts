/**
 * One model server of a fleet, for routing tests: a real OpenAI-compatible HTTP server on its own
 * loopback port (vLLM layout, `/v1/...`). A test can make it answer slowly, fail with a chosen
 * status, stall before headers, refuse connections (its listener closed) and come back on the
 * same port. It records what it received, in order, and its peak of requests in flight.
 */

/** A request the backend received. */
export interface FleetRequest {
  model: string;
  /** The body's `user` field: tests tag requests with it to see the order they arrived in. */
  tag: string | null;
  stream: boolean;
}

/** Options for {@linkcode startFleetBackend}. */
export interface FleetBackendOptions {
  /** Shown in replies ("Hello from <name>"), so a test sees who answered. */
  name: string;
  models?: string[];
}

/** A running fleet backend. */
export interface FleetBackend {
  name: string;
  url: string;
  models: string[];
  /** Completions received, in arrival order (failed ones included). */
  received: FleetRequest[];
  /** `GET /v1/models` calls (discovery and health probes). */
  modelListCalls: number;
  inFlight: number;
  /** Most requests in flight at once so far. */
  peak: number;
  /** Wait before the response headers, in ms. */
  delayMs: number;
  /** Wait between stream chunks, in ms. */
  chunkDelayMs: number;
  /** Answer completions with this HTTP status (null: answer normally). */
  failWith: number | null;
  /** Holds completions before their headers until `release()` (a stall when never released). */
  hold(): void;
  /** Lets held completions go on and stops holding. */
  release(): void;
  /** Requests waiting in `hold()`. */
  readonly held: number;
  /** Closes the listener: connections are refused until `restore()`. */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  restore(): void;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const PROMPT_TOKENS = 7;

/** Starts a fleet backend on a free loopback port. */
export function startFleetBackend(options: FleetBackendOptions): FleetBackend {
  const models = options.models ?? ["llama3.2"];
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  let waiting = 0;
  /** Sleeps that close() ends early, so no handler outlives the server. */
  const sleeping = new Map<ReturnType<typeof setTimeout>, () => void>();
  const sleep = (ms: number) =>
    ms <= 0 ? Promise.resolve() : new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sleeping.delete(timer);
        resolve();
      }, ms);
      sleeping.set(timer, resolve);
    });
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();

  const backend: FleetBackend = {
    name: options.name,
    url: "",
    models,
    received: [],
    modelListCalls: 0,
    inFlight: 0,
    peak: 0,
    delayMs: 0,
    chunkDelayMs: 0,
    failWith: null,
    hold() {
      if (gate) return;
      let openGate = () => {};
      const promise = new Promise<void>((resolve) => (openGate = resolve));
      gate = { promise, open: openGate };
    },
    release() {
      gate?.open();
      gate = null;
    },
    get held() {
      return waiting;
    },
    async refuse() {
      backend.release();
      await server?.shutdown();
      server = null;
    },
    restore() {
      server ??= listen(port);
    },
    async close() {
      backend.release();
      for (const [timer, wake] of sleeping) {
        clearTimeout(timer);
        wake();
      }
      sleeping.clear();
      for (const controller of open) {
        try {
          controller.close();
        } catch {
          // Already closed.
        }
      }
      await server?.shutdown();
      server = null;
    },
  };

  async function handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/v1/models") {
      backend.modelListCalls++;
      const data = models.map((id) => ({
        id,
        object: "model",
        created: 1700000000,
        owned_by: "me",
      }));
      return Response.json({ object: "list", data });
    }
    const body = await request.json().catch(() => null) as Record<string, unknown> | null;
    if (!body || path !== "/v1/chat/completions") {
      return Response.json({ error: { message: "Not found" } }, { status: 404 });
    }
    const stream = body.stream === true;
    const tag = typeof body.user === "string" ? body.user : null;
    backend.received.push({ model: String(body.model), tag, stream });
    backend.inFlight++;
    backend.peak = Math.max(backend.peak, backend.inFlight);
    let done = false;
    const end = () => {
      if (!done) backend.inFlight--;
      done = true;
    };
    try {
      if (gate) {
        waiting++;
        await gate.promise.finally(() => waiting--);
      }
      await sleep(backend.delayMs);
      if (backend.failWith !== null) {
        end();
        return Response.json(
          { error: { message: `failing on purpose`, type: "server_error", code: null } },
          { status: backend.failWith },
        );
      }
      const words = `Hello from ${options.name}`.split(/(?<= )/);
      const usage = {
        prompt_tokens: PROMPT_TOKENS,
        completion_tokens: words.length,
        total_tokens: PROMPT_TOKENS + words.length,
      };
      if (!stream) {
        end();
        return Response.json(completion(String(body.model), words.join(""), usage));
      }
      const includeUsage = (body.stream_options as Record<string, unknown> | undefined)
        ?.include_usage === true;
      return new Response(chunks(String(body.model), words, includeUsage ? usage : null, end), {
        headers: { "content-type": "text/event-stream" },
      });
    } catch (err) {
      end();
      throw err;
    }
  }

  function chunks(
    model: string,
    words: string[],
    usage: Record<string, number> | null,
    end: () => void,
  ): ReadableStream<Uint8Array> {
    const base = { id: "chatcmpl-fleet", object: "chat.completion.chunk", created: 1, model };
    const events: Record<string, unknown>[] = words.map((w) => ({
      ...base,
      choices: [{ index: 0, delta: { content: w }, finish_reason: null }],
    }));
    events.push({
      ...base,
      choices: [{ index: 0, delta: { content: "" }, finish_reason: "stop" }],
    });
    if (usage) events.push({ ...base, choices: [], usage });
    let sent = 0;
    let self: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream({
      start(controller) {
        self = controller;
        open.add(controller);
      },
      async pull(controller) {
        if (sent > 0) await sleep(backend.chunkDelayMs);
        try {
          if (sent < events.length) {
            controller.enqueue(encoder.encode(`data: ${JSON.stringify(events[sent++])}\n\n`));
            return;
          }
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          controller.close();
        } catch {
          // Closed by close() meanwhile.
        }
        open.delete(self);
        end();
      },
      cancel() {
        open.delete(self);
        end();
      },
    });
  }

  const listen = (at: number) =>
    Deno.serve({ hostname: "127.0.0.1", port: at, onListen() {} }, handle);
  let server: Deno.HttpServer | null = listen(0);
  const port = (server.addr as Deno.NetAddr).port;
  backend.url = `http://127.0.0.1:${port}`;
  return backend;
}

function completion(model: string, text: string, usage: Record<string, number>) {
  return {
    id: "chatcmpl-fleet",
    object: "chat.completion",
    created: 1,
    model,
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
    usage,
  };
}
