/**
 * A fake OpenAI-compatible backend (OpenAI, vLLM, llama.cpp): a real HTTP server on loopback
 * speaking OpenAI's wire format, with streams cut at awkward byte boundaries. Behaviour is chosen
 * by the model name, so tests can ask for faults.
 */

/** A request the fake received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Headers;
  body: Record<string, unknown> | null;
}

/** Options for {@linkcode startFakeOpenAi}. */
export interface FakeOpenAiOptions {
  /** Path prefix before `/chat/completions` etc.: "/v1" (vLLM, llama.cpp, OpenAI). */
  prefix?: string;
  models?: string[];
  /** Reply text of chat and completions. */
  reply?: string;
  /** Delay before the response headers for model `slow-first-byte`, in ms. */
  firstByteDelayMs?: number;
  /** If set, requests without `Authorization: Bearer <apiKey>` get 401. */
  apiKey?: string;
}

/** A running fake. */
export interface FakeOpenAi {
  url: string;
  requests: RecordedRequest[];
  /** Streams that the gateway cancelled (client went away). */
  cancelled: number;
  close(): Promise<void>;
}

/** Default reply: multi-byte characters so byte-level splits land inside them. */
export const DEFAULT_REPLY = "Héllo wörld 🙂 from the fake backend";

const encoder = new TextEncoder();

/** Starts the fake on a free loopback port. */
export function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const prefix = options.prefix ?? "/v1";
  const models = options.models ?? ["gpt-test", "slow-stream", "die-midstream", "embed-test"];
  const reply = options.reply ?? DEFAULT_REPLY;
  const requests: RecordedRequest[] = [];
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const sleeping = new Map<ReturnType<typeof setTimeout>, () => void>();
  /** A delay that close() ends early, so no handler outlives the server. */
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sleeping.delete(timer);
        resolve();
      }, ms);
      sleeping.set(timer, resolve);
    });
  const state = { cancelled: 0 };

  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    let body: Record<string, unknown> | null = null;
    if (request.method === "POST") body = await request.json().catch(() => null);
    requests.push({ method: request.method, path: url.pathname, headers: request.headers, body });
    if (options.apiKey && request.headers.get("authorization") !== `Bearer ${options.apiKey}`) {
      return errorResponse(401, "Incorrect API key provided", "invalid_api_key");
    }
    const path = url.pathname.slice(prefix.length);
    if (request.method === "GET" && path === "/models") {
      const data = models.map((id) => ({
        id,
        object: "model",
        created: 1700000000,
        owned_by: "fake",
      }));
      return Response.json({ object: "list", data });
    }
    if (request.method !== "POST" || !body) return errorResponse(404, "Not found", null);
    const model = String(body.model);
    if (!models.includes(model)) {
      return errorResponse(404, `The model \`${model}\` does not exist`, "model_not_found");
    }
    if (model === "slow-first-byte") await sleep(options.firstByteDelayMs ?? 2000);
    if (path === "/embeddings") return embeddings(body);
    if (path === "/responses") return nativeResponse(body, splitReply(reply, body));
    const kind = path === "/chat/completions" ? "chat" : path === "/completions" ? "text" : null;
    if (!kind) return errorResponse(404, "Not found", null);
    const words = splitReply(reply, body);
    const usage = {
      prompt_tokens: countPromptWords(body),
      completion_tokens: words.length,
      total_tokens: countPromptWords(body) + words.length,
    };
    if (kind === "chat" && wantsTool(body)) return toolCall(body, model, usage);
    if (body.stream !== true) return Response.json(completion(kind, model, words.join(""), usage));
    return streamResponse({ kind, model, words, usage, body });
  };

  function streamResponse(
    s: {
      kind: "chat" | "text";
      model: string;
      words: string[];
      usage: Usage;
      body: Record<string, unknown>;
    },
  ): Response {
    const id = `chatcmpl-fake${requests.length}`;
    const base = {
      id,
      object: s.kind === "chat" ? "chat.completion.chunk" : "text_completion",
      created: 1700000000,
      model: s.model,
    };
    const events: string[] = [];
    const choice = (text: string, finish: string | null) =>
      s.kind === "chat"
        ? { index: 0, delta: { content: text }, finish_reason: finish }
        : { index: 0, text, finish_reason: finish };
    if (s.kind === "chat") {
      events.push(
        JSON.stringify({
          ...base,
          choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
        }),
      );
    }
    for (const word of s.words) {
      events.push(JSON.stringify({ ...base, choices: [choice(word, null)] }));
    }
    events.push(
      JSON.stringify({
        ...base,
        choices: [choice("", s.words.length >= maxTokens(s.body) ? "length" : "stop")],
      }),
    );
    const options = s.body.stream_options as Record<string, unknown> | undefined;
    if (options?.include_usage === true) {
      events.push(JSON.stringify({ ...base, choices: [], usage: s.usage }));
    }
    const bytes = encoder.encode(events.map((e) => `data: ${e}\n\n`).join("") + "data: [DONE]\n\n");
    if (s.model === "slow-stream") return endless(base);
    if (s.model === "die-midstream") return dying(bytes);
    return new Response(awkwardChunks(bytes), { headers: { "content-type": "text/event-stream" } });
  }

  /** Sends the bytes in pieces of 1, 2, 3... bytes, which split lines and UTF-8 characters. */
  function awkwardChunks(bytes: Uint8Array): ReadableStream<Uint8Array> {
    let offset = 0;
    let size = 1;
    return new ReadableStream({
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
        size = (size % 7) + 1;
      },
    });
  }

  /** One chunk every 50 ms until the reader cancels. */
  function endless(base: Record<string, unknown>): Response {
    let sent = 0;
    let self: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        open.add(controller);
      },
      async pull(controller) {
        await sleep(sent === 0 ? 0 : 50);
        sent++;
        const chunk = {
          ...base,
          choices: [{ index: 0, delta: { content: `w${sent} ` }, finish_reason: null }],
        };
        try {
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`));
        } catch {
          // Closed by close() meanwhile.
        }
      },
      cancel() {
        state.cancelled++;
        open.delete(self);
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  }

  /** Sends about half of the stream, then breaks the connection. */
  function dying(bytes: Uint8Array): Response {
    const half = bytes.slice(0, Math.floor(bytes.length / 2));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(half);
      },
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        controller.error(new Error("backend crashed"));
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const { port } = server.addr as Deno.NetAddr;
  return Promise.resolve({
    url: `http://127.0.0.1:${port}`,
    requests,
    get cancelled() {
      return state.cancelled;
    },
    async close() {
      for (const [timer, wake] of sleeping) {
        clearTimeout(timer);
        wake();
      }
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

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

function maxTokens(body: Record<string, unknown>): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === "number" ? value : Infinity;
}

function splitReply(reply: string, body: Record<string, unknown>): string[] {
  const words = reply.split(/(?<= )/);
  return words.slice(0, maxTokens(body));
}

function countPromptWords(body: Record<string, unknown>): number {
  const text = JSON.stringify(body.messages ?? body.prompt ?? body.input ?? "");
  return text.split(/\s+/).filter(Boolean).length;
}

function completion(kind: "chat" | "text", model: string, text: string, usage: Usage) {
  const finish = "stop";
  if (kind === "chat") {
    return {
      id: "chatcmpl-fake",
      object: "chat.completion",
      created: 1700000000,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finish }],
      usage,
    };
  }
  return {
    id: "cmpl-fake",
    object: "text_completion",
    created: 1700000000,
    model,
    choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
    usage,
  };
}

function embeddings(body: Record<string, unknown>): Response {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const data = inputs.map((input, index) => ({
    object: "embedding",
    index,
    embedding: [String(input).length / 10, 0.5, -0.25],
  }));
  const tokens = inputs.reduce((sum: number, input) => sum + String(input).split(/\s+/).length, 0);
  return Response.json({
    object: "list",
    data,
    model: body.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

/** A chat request with tools whose last user message says `[tool]` gets a tool call. */
function wantsTool(body: Record<string, unknown>): boolean {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const last = messages.at(-1) as Record<string, unknown> | undefined;
  return Array.isArray(body.tools) && last?.role === "user" &&
    JSON.stringify(last.content ?? "").includes("[tool]");
}

/** A call of the first tool with `{"city":"Paris"}`; streamed with the arguments in two parts. */
function toolCall(body: Record<string, unknown>, model: string, usage: Usage): Response {
  const tool = (body.tools as Record<string, Record<string, unknown>>[])[0];
  const name = String(tool?.function?.name ?? "tool");
  const call = {
    id: "call_fake_1",
    type: "function",
    function: { name, arguments: '{"city":"Paris"}' },
  };
  const base = { id: "chatcmpl-tool", created: 1700000000, model };
  if (body.stream !== true) {
    return Response.json({
      ...base,
      object: "chat.completion",
      choices: [{
        index: 0,
        message: { role: "assistant", content: null, tool_calls: [call] },
        finish_reason: "tool_calls",
      }],
      usage,
    });
  }
  const chunk = (delta: unknown, finish: string | null) =>
    `data: ${
      JSON.stringify({
        ...base,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta, finish_reason: finish }],
      })
    }\n\n`;
  const text = chunk({
    role: "assistant",
    content: null,
    tool_calls: [{ index: 0, id: call.id, type: "function", function: { name, arguments: "" } }],
  }, null) +
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, null) +
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, null) +
    chunk({}, "tool_calls") +
    `data: ${
      JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [], usage })
    }\n\n` +
    "data: [DONE]\n\n";
  return new Response(text, { headers: { "content-type": "text/event-stream" } });
}

/**
 * OpenAI's own Responses API, as the native OpenAI backend answers it: a Response object, or the
 * typed event stream (output item, text deltas, `response.completed` with usage). Input tokens
 * are the words of the input, as for chat.
 */
function nativeResponse(body: Record<string, unknown>, words: string[]): Response {
  const input = JSON.stringify(body.input ?? "").split(/\s+/).filter(Boolean).length;
  const text = words.join("");
  const message = {
    id: "msg_native",
    type: "message",
    status: "completed",
    role: "assistant",
    content: [{ type: "output_text", text, annotations: [] }],
  };
  const response = (status: string, output: unknown[], usage: unknown) => ({
    id: "resp_native",
    object: "response",
    created_at: 1700000000,
    status,
    model: body.model,
    output,
    usage,
    error: null,
    incomplete_details: null,
  });
  const usage = {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: words.length,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + words.length,
  };
  if (body.stream !== true) return Response.json(response("completed", [message], usage));
  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
  const events = [
    event("response.created", { response: response("in_progress", [], null) }),
    event("response.output_item.added", {
      output_index: 0,
      item: { ...message, status: "in_progress", content: [] },
    }),
    ...words.map((delta) =>
      event("response.output_text.delta", {
        item_id: "msg_native",
        output_index: 0,
        content_index: 0,
        delta,
      })
    ),
    event("response.output_item.done", { output_index: 0, item: message }),
    event("response.completed", { response: response("completed", [message], usage) }),
  ];
  return new Response(events.join(""), { headers: { "content-type": "text/event-stream" } });
}

function errorResponse(status: number, message: string, code: string | null): Response {
  return Response.json(
    { error: { message, type: "invalid_request_error", param: null, code } },
    { status },
  );
}
