/** Ollama's native answers -> OpenAI's objects (non-streamed). */
import { ollamaUsage } from "../src/formats/ollama_events.ts";
import type { Usage } from "./types.ts";

type Json = Record<string, unknown>;

export { ollamaUsage } from "../src/formats/ollama_events.ts";

/** `done_reason` -> `finish_reason`; a message with tool calls finishes with `tool_calls`. */
export function finishReason(doneReason: unknown, hasToolCalls: boolean): string {
  if (hasToolCalls) return "tool_calls";
  return doneReason === "length" ? "length" : "stop";
}

/** Seconds since the epoch of Ollama's `created_at`, or now. */
export function createdSeconds(body: Json, now: () => number): number {
  const parsed = typeof body.created_at === "string" ? Date.parse(body.created_at) : NaN;
  return Math.floor((Number.isNaN(parsed) ? now() : parsed) / 1000);
}

/** Ollama tool calls -> OpenAI's, with generated ids and arguments as a JSON string. */
export function toOpenAiToolCalls(calls: unknown, idPrefix: string, offset = 0): Json[] {
  if (!Array.isArray(calls)) return [];
  return calls.map((call: Json, i) => {
    const fn = (call?.function ?? {}) as Json;
    const args = fn.arguments;
    return {
      index: offset + i,
      id: `call_${idPrefix}_${offset + i}`,
      type: "function",
      function: {
        name: String(fn.name ?? ""),
        arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}),
      },
    };
  });
}

/** Ollama `/api/chat` answer -> OpenAI `chat.completion`. */
export function fromOllamaChat(body: Json, requestId: string, now: () => number): Json {
  const message = (body.message ?? {}) as Json;
  const toolCalls = toOpenAiToolCalls(message.tool_calls, requestId).map(({ index: _, ...call }) =>
    call
  );
  const text = typeof message.content === "string" ? message.content : "";
  // OpenAI sends null content beside tool calls; some clients print an empty part for "".
  const out: Json = {
    role: "assistant",
    content: text === "" && toolCalls.length > 0 ? null : text,
  };
  if (toolCalls.length > 0) out.tool_calls = toolCalls;
  if (typeof message.thinking === "string" && message.thinking) {
    out.reasoning_content = message.thinking;
  }
  return {
    id: `chatcmpl-${requestId}`,
    object: "chat.completion",
    created: createdSeconds(body, now),
    model: body.model,
    choices: [{
      index: 0,
      message: out,
      logprobs: null,
      finish_reason: finishReason(body.done_reason, toolCalls.length > 0),
    }],
    ...usageField(ollamaUsage(body)),
  };
}

/** `{ usage }` when the usage is known, else nothing (an unknown count is not shown as 0). */
function usageField(usage: Usage | null): Json {
  return usage ? { usage } : {};
}

/** Ollama `/api/generate` answer -> OpenAI `text_completion`. */
export function fromOllamaGenerate(body: Json, requestId: string, now: () => number): Json {
  return {
    id: `cmpl-${requestId}`,
    object: "text_completion",
    created: createdSeconds(body, now),
    model: body.model,
    choices: [{
      index: 0,
      text: typeof body.response === "string" ? body.response : "",
      logprobs: null,
      finish_reason: finishReason(body.done_reason, false),
    }],
    ...usageField(ollamaUsage(body)),
  };
}

/** Ollama `/api/embed` answer -> OpenAI embeddings list. */
export function fromOllamaEmbed(body: Json, model: unknown): Json {
  const embeddings = Array.isArray(body.embeddings) ? body.embeddings : [];
  const usage = ollamaUsage(body);
  return {
    object: "list",
    data: embeddings.map((embedding, index) => ({ object: "embedding", index, embedding })),
    model: body.model ?? model,
    ...(usage
      ? { usage: { prompt_tokens: usage.prompt_tokens, total_tokens: usage.prompt_tokens } }
      : {}),
  };
}
