/**
 * A fake Ollama: a real HTTP server on loopback speaking Ollama's native API (`/api/tags`,
 * `/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`) with NDJSON streams cut at awkward byte boundaries.
 * Behaviour is chosen by the request: `[tool]` in the last user message asks for a tool call,
 * `options.num_predict` cuts the answer with `done_reason: "length"`, and the models
 * `slow-stream`, `error-midstream` and `die-midstream` stream forever, report an error line, or
 * break the connection.
 */

/** A request the fake received. */
export interface RecordedRequest {
  method: string;
  path: string;
  body: Record<string, unknown> | null;
}

/** A running fake Ollama. */
export interface FakeOllama {
  url: string;
  requests: RecordedRequest[];
  /** Streams the gateway cancelled. */
  readonly cancelled: number;
  close(): Promise<void>;
}

/** Models `/api/tags` lists by default. */
export const OLLAMA_MODELS = [
  "llama3.2:1b",
  "nomic-embed-text",
  "slow-stream",
  "error-midstream",
  "die-midstream",
];

/** The words of every answer: multi-byte characters so byte splits land inside them. */
export const OLLAMA_REPLY = ["Bonjour", " café", " 🙂", " from", " Ollama"];

const encoder = new TextEncoder();
const CREATED_AT = "2026-11-24T10:00:00.000000Z";

/** Starts the fake on a free loopback port. */
export function startFakeOllama(options: { models?: string[] } = {}): Promise<FakeOllama> {
  const models = options.models ?? OLLAMA_MODELS;
  const requests: RecordedRequest[] = [];
  const state = { cancelled: 0 };
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const wakers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakers.add(wake);
    });

  const handler = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const body = request.method === "POST" ? await request.json().catch(() => null) : null;
    requests.push({ method: request.method, path, body });
    if (request.method === "GET" && path === "/api/tags") {
      return Response.json({
        models: models.map((name) => ({
          name,
          model: name,
          modified_at: "2026-11-01T12:00:00Z",
          size: 1234,
          digest: "sha256:abc",
          details: { format: "gguf", family: "llama" },
        })),
      });
    }
    if (!body || request.method !== "POST") {
      return Response.json({ error: "not found" }, { status: 404 });
    }
    const model = String(body.model);
    if (!models.includes(model)) {
      return Response.json({ error: `model "${model}" not found, try pulling it first` }, {
        status: 404,
      });
    }
    if (path === "/api/embed") {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      return Response.json({
        model,
        embeddings: inputs.map((text: string) => [text.length / 10, 0.25, -0.5, 1]),
        total_duration: 1000,
        load_duration: 10,
        prompt_eval_count: inputs.length * 2,
      });
    }
    if (path === "/api/embeddings") {
      // Ollama's older endpoint: one prompt, one vector.
      const prompt = String(body.prompt ?? "");
      return Response.json({ embedding: [prompt.length / 10, 0.25, -0.5, 1] });
    }
    if (path !== "/api/chat" && path !== "/api/generate") {
      return Response.json({ error: "not found" }, { status: 404 });
    }
    const lines = answerLines(path === "/api/chat", body);
    if (body.stream === false) return Response.json(merge(path === "/api/chat", lines));
    if (model === "slow-stream") return endless(path === "/api/chat", model);
    const ndjson = lines.map((line) => JSON.stringify(line) + "\n");
    if (model === "error-midstream") {
      return ndjsonResponse(
        awkward(encoder.encode(ndjson[0] + JSON.stringify({ error: "boom" }) + "\n")),
      );
    }
    if (model === "die-midstream") {
      return ndjsonResponse(dying(encoder.encode(ndjson.slice(0, 2).join(""))));
    }
    return ndjsonResponse(awkward(encoder.encode(ndjson.join(""))));
  };

  function endless(chat: boolean, model: string): Response {
    let sent = 0;
    let self: ReadableStreamDefaultController<Uint8Array>;
    return ndjsonResponse(
      new ReadableStream<Uint8Array>({
        start(controller) {
          self = controller;
          open.add(controller);
        },
        async pull(controller) {
          await sleep(sent === 0 ? 0 : 50);
          sent++;
          const part = chat
            ? { message: { role: "assistant", content: `w${sent} ` } }
            : { response: `w${sent} ` };
          try {
            controller.enqueue(
              encoder.encode(
                JSON.stringify({ model, created_at: CREATED_AT, ...part, done: false }) + "\n",
              ),
            );
          } catch {
            // Closed by close() meanwhile.
          }
        },
        cancel() {
          state.cancelled++;
          open.delete(self);
        },
      }),
    );
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return Promise.resolve({
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    requests,
    get cancelled() {
      return state.cancelled;
    },
    async close() {
      for (const wake of [...wakers]) wake();
      for (const controller of open) {
        try {
          controller.close();
        } catch {
          // Already closed.
        }
      }
      await server.shutdown();
    },
  });
}

type Json = Record<string, unknown>;

/** The NDJSON objects of one answer, in Ollama's documented field layout. */
function answerLines(chat: boolean, body: Json): Json[] {
  const model = body.model;
  const options = (body.options ?? {}) as Json;
  const messages = (body.messages ?? []) as Json[];
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const wantsTool = chat && typeof lastUser?.content === "string" &&
    lastUser.content.includes("[tool]");
  const limit = typeof options.num_predict === "number" ? options.num_predict : Infinity;
  const words = OLLAMA_REPLY.slice(0, limit);
  const base = { model, created_at: CREATED_AT };
  const lines: Json[] = [];
  if (wantsTool) {
    lines.push({
      ...base,
      message: {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      done: false,
    });
  } else {
    for (const word of words) {
      lines.push(
        chat
          ? { ...base, message: { role: "assistant", content: word }, done: false }
          : { ...base, response: word, done: false },
      );
    }
  }
  const promptText = JSON.stringify(chat ? messages : body.prompt);
  const final: Json = {
    ...base,
    done: true,
    done_reason: words.length < OLLAMA_REPLY.length ? "length" : "stop",
    total_duration: 5_000_000,
    load_duration: 1_000_000,
    prompt_eval_count: promptText.split(/\s+/).length + 5,
    prompt_eval_duration: 1_000_000,
    eval_count: wantsTool ? 8 : words.length,
    eval_duration: 2_000_000,
  };
  lines.push(
    chat
      ? { ...final, message: { role: "assistant", content: "" } }
      : { ...final, response: "", context: [1, 2, 3] },
  );
  return lines;
}

/** Folds stream lines into the single object Ollama returns with `stream: false`. */
function merge(chat: boolean, lines: Json[]): Json {
  const final = { ...lines[lines.length - 1] };
  if (chat) {
    const content = lines.map((l) => (l.message as Json).content).join("");
    const calls = lines.flatMap((l) =>
      ((l.message as Json).tool_calls as Json[] | undefined) ?? []
    );
    final.message = { role: "assistant", content, ...(calls.length ? { tool_calls: calls } : {}) };
  } else {
    final.response = lines.map((l) => l.response).join("");
  }
  return final;
}

function ndjsonResponse(stream: ReadableStream<Uint8Array>): Response {
  return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
}

/** Pieces of 1 to 5 bytes: lines and UTF-8 characters are cut everywhere. */
function awkward(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  let size = 1;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
      size = (size % 5) + 1;
    },
  });
}

/** Sends the bytes, then breaks the stream as a crashed server would. */
function dying(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    async pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
      controller.error(new Error("ollama crashed"));
    },
  });
}
