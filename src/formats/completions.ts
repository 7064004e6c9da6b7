/** Legacy Completions (`POST /v1/completions`), sent as it came. */
import { estimateContentTokens, textTokens } from "../usage/estimate.ts";
import {
  MAX_CHOICES,
  maxTokensOf,
  modelOf,
  optionalBoolean,
  optionalInt,
  optionalObject,
  textInputCount,
  withoutRoutingFields,
} from "./fields.ts";
import { invalidRequest } from "../errors.ts";
import { openAiCodec, type OpenAiRequest } from "./openai_events.ts";
import type { Codec } from "./types.ts";

type Json = Record<string, unknown>;

/** A validated completions request (same shape as a chat request). */
export type CompletionsRequest = OpenAiRequest;

/**
 * Every prompt of the list gets `best_of` (at least `n`) answers of up to `max_tokens` each, so
 * that is what is reserved.
 */
export function parseCompletions(
  body: Json,
  defaults: { fallbackModel: string | null; defaultMaxTokens: number },
): CompletionsRequest {
  const model = modelOf(body, defaults.fallbackModel);
  if (body.prompt === undefined || body.prompt === null) {
    throw invalidRequest("Missing required field", "prompt");
  }
  const prompts = textInputCount(body.prompt, "prompt");
  const stream = optionalBoolean(body, "stream") ?? false;
  const options = optionalObject(body, "stream_options");
  const n = optionalInt(body, "n", { min: 1, max: MAX_CHOICES }) ?? 1;
  const bestOf = optionalInt(body, "best_of", { min: 1, max: MAX_CHOICES }) ?? n;
  if (bestOf < n) throw invalidRequest("Field must be at least n", "best_of");
  const answer = maxTokensOf(body) ?? defaults.defaultMaxTokens;
  const promptTokens = estimateContentTokens(body.prompt);
  return {
    model,
    stream,
    promptTokens,
    reserveTokens: promptTokens + prompts * bestOf * answer,
    body: withoutRoutingFields(body),
    includeUsage: stream && options?.include_usage === true,
  };
}

function completionsAnswerTokens(body: Json): number {
  let tokens = 0;
  for (const choice of Array.isArray(body.choices) ? body.choices : []) {
    const text = (choice as Json | null)?.text;
    if (typeof text === "string") tokens += textTokens(text);
  }
  return tokens;
}

/** The completions codec. */
export const completionsCodec: Codec<CompletionsRequest> = openAiCodec({
  name: "completions",
  parse: parseCompletions,
  answerTokens: completionsAnswerTokens,
});
