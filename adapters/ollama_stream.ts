/** Ollama's NDJSON stream -> OpenAI SSE chunks, ids and `[DONE]`, one line at a time. */
import { LineSplitter } from "../src/lines.ts";
import { SSE_DONE, sseEvent } from "../src/sse.ts";
import { createdSeconds, finishReason, ollamaUsage, toOpenAiToolCalls } from "./ollama_response.ts";

type Json = Record<string, unknown>;

/** Options for {@linkcode ollamaToSse}. */
export interface OllamaStreamOptions {
  kind: "chat" | "completions";
  requestId: string;
  model: string;
  now: () => number;
}

/**
 * Builds the transform. Every chunk carries one id, `created` and model; the last content chunk
 * is followed by one with the finish reason, then a usage-only chunk (as OpenAI sends with
 * `include_usage`; the gateway drops it if the client did not ask), then `[DONE]`. An `error`
 * line becomes one error event; a stream that ends without `done` errors so the cut is reported.
 */
export function ollamaToSse(options: OllamaStreamOptions): TransformStream<Uint8Array, Uint8Array> {
  const chat = options.kind === "chat";
  const id = `${chat ? "chatcmpl" : "cmpl"}-${options.requestId}`;
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const lines = new LineSplitter();
  let created: number | null = null;
  let first = true;
  let toolCalls = 0;
  let finished = false;

  const chunk = (choices: Json[], extra: Json = {}) =>
    sseEvent({ id, object, created, model: options.model, choices, ...extra });
  const choice = (content: string, finish: string | null, delta: Json = {}): Json => {
    if (!chat) return { index: 0, text: content, logprobs: null, finish_reason: finish };
    const role = first ? { role: "assistant" } : {};
    first = false;
    return {
      index: 0,
      // Beside tool calls OpenAI sends null content, not "".
      delta: {
        ...role,
        ...delta,
        ...(content || !finish
          ? { content: content === "" && delta.tool_calls ? null : content }
          : {}),
      },
      logprobs: null,
      finish_reason: finish,
    };
  };

  const handle = (line: string, controller: TransformStreamDefaultController<Uint8Array>) => {
    if (finished || line.trim() === "") return;
    let body: Json;
    try {
      body = JSON.parse(line);
    } catch {
      throw new Error("Ollama sent a line that is not JSON");
    }
    if (body.error !== undefined) {
      finished = true;
      controller.enqueue(sseEvent({
        error: {
          message: "The backend failed before the response was complete",
          type: "api_error",
          param: null,
          code: "upstream_error",
        },
      }));
      return;
    }
    created ??= createdSeconds(body, options.now);
    const message = (body.message ?? {}) as Json;
    const text = chat
      ? (typeof message.content === "string" ? message.content : "")
      : String(body.response ?? "");
    const calls = chat ? toOpenAiToolCalls(message.tool_calls, options.requestId, toolCalls) : [];
    toolCalls += calls.length;
    if (text || calls.length > 0 || (first && chat)) {
      controller.enqueue(
        chunk([choice(text, null, calls.length > 0 ? { tool_calls: calls } : {})]),
      );
    }
    if (body.done === true) {
      finished = true;
      controller.enqueue(chunk([choice("", finishReason(body.done_reason, toolCalls > 0))]));
      const usage = ollamaUsage(body);
      if (usage) controller.enqueue(chunk([], { usage }));
      controller.enqueue(SSE_DONE);
    }
  };

  return new TransformStream({
    transform(bytes, controller) {
      for (const line of lines.push(bytes)) handle(line, controller);
    },
    flush(controller) {
      const rest = lines.flush();
      if (rest !== null) handle(rest, controller);
      if (!finished) throw new Error("Ollama's stream ended before it was done");
    },
  });
}
