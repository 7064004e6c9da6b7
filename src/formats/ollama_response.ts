/** OpenAI answers (chat completion, embeddings list) -> Ollama's answers, plus the parts streams share. */
import type { Usage } from "../../adapters/types.ts";
import { readOpenAiUsage, tokenCount } from "../usage/counts.ts";

type Json = Record<string, unknown>;

/** What an Ollama answer needs beyond the OpenAI one. */
export interface OllamaContext {
  /** The model name the client asked for (answers echo it, not the backend's name). */
  model: string;
  /** Clock in milliseconds since the epoch (the gateway's `Date.now`). */
  now: () => number;
  /** When the gateway received the request, on the same clock; durations count from it. */
  startedAt: number;
  /** The client sent `think: false`: leave the model's reasoning out. */
  hideThinking?: boolean;
}

/** When output started and ended, on the context's clock. */
export interface Timing {
  startedAt: number;
  /** First text or tool call; null for answers that arrived whole. */
  firstOutputAt: number | null;
  endedAt: number;
}

/** OpenAI chat completion -> Ollama `/api/chat` answer. */
export function chatToOllamaChat(chat: Json, ctx: OllamaContext): Json {
  const choice = firstChoice(chat);
  const message = asObject(choice.message);
  const out: Json = { role: "assistant", content: textOf(message.content) };
  const thinking = ctx.hideThinking ? "" : reasoningOf(message);
  if (thinking) out.thinking = thinking;
  const calls = Array.isArray(message.tool_calls)
    ? message.tool_calls.map((call, index) => toOllamaToolCall(asObject(call), index))
    : [];
  if (calls.length > 0) out.tool_calls = calls;
  return {
    model: ctx.model,
    created_at: createdAt(ctx),
    message: out,
    ...finalFields(choice.finish_reason, readOpenAiUsage(chat.usage), wholeAnswer(ctx)),
  };
}

/** OpenAI chat completion -> Ollama `/api/generate` answer (no `context`: nothing can reuse it). */
export function chatToOllamaGenerate(chat: Json, ctx: OllamaContext): Json {
  const choice = firstChoice(chat);
  const message = asObject(choice.message);
  const out: Json = {
    model: ctx.model,
    created_at: createdAt(ctx),
    response: textOf(message.content),
  };
  const thinking = ctx.hideThinking ? "" : reasoningOf(message);
  if (thinking) out.thinking = thinking;
  return {
    ...out,
    ...finalFields(choice.finish_reason, readOpenAiUsage(chat.usage), wholeAnswer(ctx)),
  };
}

/** OpenAI embeddings list -> Ollama `/api/embed` answer, vectors in input order. */
export function embeddingsToOllamaEmbed(openai: Json, ctx: OllamaContext): Json {
  const out: Json = {
    model: ctx.model,
    embeddings: vectorsOf(openai),
    total_duration: nanoseconds(ctx.now() - ctx.startedAt),
    load_duration: 0,
  };
  const prompt = tokenCount(asObject(openai.usage).prompt_tokens);
  if (prompt !== null) out.prompt_eval_count = prompt;
  return out;
}

/** OpenAI embeddings list -> legacy `/api/embeddings` answer: the first vector. */
export function embeddingsToOllamaLegacy(openai: Json): Json {
  return { embedding: vectorsOf(openai)[0] ?? [] };
}

/**
 * The fields of Ollama's final object: `done`, `done_reason`, durations in nanoseconds and, when
 * the backend reported usage, `prompt_eval_count` and `eval_count` (never made up: the meter bills
 * what these say).
 */
export function finalFields(finishReason: unknown, usage: Usage | null, timing: Timing): Json {
  const total = nanoseconds(timing.endedAt - timing.startedAt);
  const first = timing.firstOutputAt;
  const out: Json = {
    done: true,
    done_reason: doneReason(finishReason),
    total_duration: total,
    load_duration: 0,
  };
  if (usage) out.prompt_eval_count = usage.prompt_tokens;
  out.prompt_eval_duration = first === null ? 0 : nanoseconds(first - timing.startedAt);
  if (usage) out.eval_count = usage.completion_tokens;
  out.eval_duration = first === null ? total : nanoseconds(timing.endedAt - first);
  return out;
}

/** OpenAI `finish_reason` -> Ollama `done_reason`: only a cut by the token limit differs. */
export function doneReason(finishReason: unknown): "stop" | "length" {
  return finishReason === "length" ? "length" : "stop";
}

/** The reasoning text servers put in `reasoning_content` (vLLM, llama.cpp) or `reasoning`. */
export function reasoningOf(message: Json): string {
  const text = message.reasoning_content ?? message.reasoning;
  return typeof text === "string" ? text : "";
}

/** One OpenAI tool call -> Ollama's: arguments as an object (`{}` when they are not valid JSON). */
export function toOllamaToolCall(call: Json, index: number): Json {
  const fn = asObject(call.function);
  const out: Json = {
    function: {
      index,
      name: typeof fn.name === "string" ? fn.name : "",
      arguments: argumentsOf(fn),
    },
  };
  if (typeof call.id === "string" && call.id !== "") out.id = call.id;
  return out;
}

/** Ollama's `created_at`: the current time as RFC 3339. */
export function createdAt(ctx: OllamaContext): string {
  const now = ctx.now();
  return new Date(Number.isFinite(now) ? now : 0).toISOString();
}

/** A JSON object, or an empty one for anything else. */
export function asObject(value: unknown): Json {
  return value && typeof value === "object" && !Array.isArray(value) ? value as Json : {};
}

function argumentsOf(fn: Json): Json {
  const args = fn.arguments;
  if (typeof args !== "string") return asObject(args);
  try {
    return asObject(JSON.parse(args));
  } catch {
    return {};
  }
}

function wholeAnswer(ctx: OllamaContext): Timing {
  return { startedAt: ctx.startedAt, firstOutputAt: null, endedAt: ctx.now() };
}

function firstChoice(chat: Json): Json {
  const choices = Array.isArray(chat.choices) ? chat.choices : [];
  return asObject(choices.find((choice) => asObject(choice).index === 0) ?? choices[0]);
}

/** Message content as text: a string, or the text parts of a content array. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => asObject(part).text).filter((t) => typeof t === "string").join("");
}

function vectorsOf(openai: Json): unknown[][] {
  const rows = (Array.isArray(openai.data) ? openai.data : []).map(asObject);
  if (rows.every((row) => typeof row.index === "number")) {
    rows.sort((a, b) => (a.index as number) - (b.index as number));
  }
  return rows.map((row) => Array.isArray(row.embedding) ? row.embedding : []);
}

/** Milliseconds -> whole nanoseconds; negative or non-finite spans count as 0, never NaN. */
function nanoseconds(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms * 1_000_000) : 0;
}
