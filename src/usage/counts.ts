/** Token counts reported by a backend are untrusted input: only sane whole numbers are kept. */
import type { Usage } from "../../adapters/types.ts";

/** The most tokens one request may be charged; larger reports are treated as absent. */
export const MAX_TOKENS_PER_REQUEST = 1_000_000_000;

/** A token count if `value` is a whole number from 0 to {@linkcode MAX_TOKENS_PER_REQUEST}. */
export function tokenCount(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 &&
      value <= MAX_TOKENS_PER_REQUEST
    ? value
    : null;
}

/**
 * Usage from a backend's prompt and completion counts, or null when either is missing or not
 * sane (the caller then falls back to its estimate). The total is always recomputed: a backend's
 * own `total_tokens` is never trusted.
 */
export function usageFromCounts(prompt: unknown, completion: unknown): Usage | null {
  const p = tokenCount(prompt);
  const c = tokenCount(completion ?? 0);
  if (p === null || c === null) return null;
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

/** OpenAI's `usage` object (chat, completions, embeddings); anything insane counts as absent. */
export function readOpenAiUsage(value: unknown): Usage | null {
  if (!value || typeof value !== "object") return null;
  const usage = value as Record<string, unknown>;
  return usageFromCounts(usage.prompt_tokens, usage.completion_tokens);
}
