/**
 * Amounts the stores add to KvU64 counters. Callers validate usage first; the stores still defend
 * themselves, because one amount KV cannot take (a fraction, NaN, a negative, a number past
 * 2^53) would fail every batch it is part of.
 */

/** `value` as a whole number from 0 to `Number.MAX_SAFE_INTEGER` (NaN and negatives become 0). */
export function safeAmount(value: number): number {
  if (!(value > 0)) return 0;
  if (value >= Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER;
  return Math.round(value);
}

/** Whether {@linkcode safeAmount} would change `value`. */
export function isSafeAmount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
