/**
 * Chat Completions answers -> Responses API objects, and the pieces the stream translation
 * shares with it (ids, output items, usage), so both give the same shapes.
 */
import { tokenCount, usageFromCounts } from "../usage/counts.ts";

type Json = Record<string, unknown>;

/** What a translated answer needs besides the backend's chat answer. */
export interface ResponseContext {
  /** `resp_...` id, derived from the gateway's request id. */
  id: string;
  /** Seconds since the epoch. */
  createdAt: number;
  /** The name the client asked for. */
  model: string;
  /** The client's Responses body (echo instructions, tools, temperature, ...). */
  request: Record<string, unknown>;
}

/** The end states a translated response can reach. */
export type FinalStatus = "completed" | "incomplete";

/** How a response ends, from a chat `finish_reason`. */
export interface Outcome {
  status: FinalStatus;
  incomplete_details: { reason: string } | null;
}

/** Hitting `max_tokens` or a content filter leaves the response incomplete, as OpenAI reports. */
export function outcomeOf(finishReason: unknown): Outcome {
  if (finishReason === "length") {
    return { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } };
  }
  if (finishReason === "content_filter") {
    return { status: "incomplete", incomplete_details: { reason: "content_filter" } };
  }
  return { status: "completed", incomplete_details: null };
}

/** An output item's id: unique because it is made of the response id and the item's position. */
export function itemId(ctx: ResponseContext, prefix: "msg" | "fc", outputIndex: number): string {
  const base = ctx.id.startsWith("resp_") ? ctx.id.slice(5) : ctx.id;
  return `${prefix}_${base}_${outputIndex}`;
}

/**
 * Returns a function giving each tool call its `call_id`: the backend's id when it is a usable,
 * unused string (the client echoes it back in `function_call_output`), else a generated one.
 */
export function createCallIds(
  ctx: ResponseContext,
): (backendId: unknown, outputIndex: number) => string {
  const used = new Set<string>();
  return function callId(backendId, outputIndex) {
    const id = typeof backendId === "string" && backendId.length > 0 && backendId.length <= 256 &&
        !used.has(backendId)
      ? backendId
      : `call_${itemId(ctx, "fc", outputIndex).slice(3)}`;
    used.add(id);
    return id;
  };
}

/** An `output_text` content part. */
export function outputText(text: string): Json {
  return { type: "output_text", text, annotations: [], logprobs: [] };
}

/** An assistant `message` output item. */
export function messageItem(id: string, status: string, content: Json[]): Json {
  return { id, type: "message", status, role: "assistant", content };
}

/** A `function_call` output item. */
export function functionCallItem(
  id: string,
  call: { callId: string; name: string; args: string },
  status: string,
): Json {
  return {
    id,
    type: "function_call",
    status,
    call_id: call.callId,
    name: call.name,
    arguments: call.args,
  };
}

/**
 * Chat usage -> Responses usage, or null when the backend reported none that is sane: a made-up
 * zero would be billed as real, while null lets the gateway fall back to its estimate.
 */
export function responsesUsage(usage: unknown): Json | null {
  if (!isObject(usage)) return null;
  const counts = usageFromCounts(usage.prompt_tokens, usage.completion_tokens);
  if (counts === null) return null;
  const cached = detail(usage.prompt_tokens_details, "cached_tokens", counts.prompt_tokens);
  const reasoning = detail(
    usage.completion_tokens_details,
    "reasoning_tokens",
    counts.completion_tokens,
  );
  return {
    input_tokens: counts.prompt_tokens,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: counts.completion_tokens,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: counts.total_tokens,
  };
}

/** The Response object around `output`, echoing the request's settings as OpenAI does. */
export function responseObject(
  ctx: ResponseContext,
  status: "in_progress" | FinalStatus,
  output: Json[],
  end: { outcome: Outcome; usage: Json | null } | null = null,
): Json {
  const r = ctx.request;
  const reasoning = isObject(r.reasoning) ? r.reasoning : {};
  const text = isObject(r.text) ? r.text : {};
  return {
    id: ctx.id,
    object: "response",
    created_at: ctx.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: end?.outcome.incomplete_details ?? null,
    instructions: stringOrNull(r.instructions),
    max_output_tokens: numberOrNull(r.max_output_tokens),
    max_tool_calls: null,
    model: ctx.model,
    output,
    parallel_tool_calls: typeof r.parallel_tool_calls === "boolean" ? r.parallel_tool_calls : true,
    previous_response_id: null,
    reasoning: { effort: stringOrNull(reasoning.effort), summary: null },
    safety_identifier: stringOrNull(r.safety_identifier),
    store: false,
    temperature: numberOrNull(r.temperature),
    text: { format: isObject(text.format) ? text.format : { type: "text" } },
    tool_choice: typeof r.tool_choice === "string" || isObject(r.tool_choice)
      ? r.tool_choice
      : "auto",
    tools: Array.isArray(r.tools) ? r.tools : [],
    top_p: numberOrNull(r.top_p),
    truncation: "disabled",
    usage: end?.usage ?? null,
    user: stringOrNull(r.user),
    metadata: isObject(r.metadata) ? r.metadata : {},
  };
}

/** A chat completion -> a Response: the text as one message, then one item per tool call. */
export function chatToResponse(
  chat: Record<string, unknown>,
  ctx: ResponseContext,
): Record<string, unknown> {
  const choice = Array.isArray(chat.choices) && isObject(chat.choices[0]) ? chat.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const outcome = outcomeOf(choice.finish_reason);
  const text = messageText(message.content);
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObject) : [];
  const output: Json[] = [];
  if (text !== "" || calls.length === 0) {
    output.push(messageItem(itemId(ctx, "msg", 0), outcome.status, [outputText(text)]));
  }
  const callId = createCallIds(ctx);
  for (const call of calls) {
    const index = output.length;
    const fn = isObject(call.function) ? call.function : {};
    output.push(functionCallItem(itemId(ctx, "fc", index), {
      callId: callId(call.id, index),
      name: typeof fn.name === "string" ? fn.name : "",
      args: toolArguments(fn.arguments),
    }, outcome.status));
  }
  return responseObject(ctx, outcome.status, output, {
    outcome,
    usage: responsesUsage(chat.usage),
  });
}

/** Tool arguments as the JSON string Responses carries (some backends send an object). */
export function toolArguments(value: unknown): string {
  if (typeof value === "string" && value !== "") return value;
  // A call without arguments is a call with none: "{}" parses, "" does not.
  return JSON.stringify(value === undefined || value === null || value === "" ? {} : value);
}

/** Narrows `value` to a plain JSON object. */
export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => isObject(part) && typeof part.text === "string" ? part.text : "")
    .join("");
}

/** A detail count, kept only when sane and within the total it is part of. */
function detail(details: unknown, key: string, total: number): number {
  const value = isObject(details) ? tokenCount(details[key]) : null;
  return value !== null && value <= total ? value : 0;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" ? value : null;
}
