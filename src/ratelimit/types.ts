/** Per-key rate limits: requests per minute with burst, tokens per minute, concurrency. */

/** A key's rate limits; null means unlimited. */
export interface RateLimits {
  rpm: number | null;
  /** Requests a full bucket admits at once; null means one minute's worth (`rpm`). */
  burst: number | null;
  tpm: number | null;
  maxConcurrency: number | null;
}

/** Why a request was refused. */
export type RefusalReason = "rpm" | "tpm" | "concurrency" | "unavailable";

/** What OpenAI's `x-ratelimit-*` headers report (null fields: that limit is off). */
export interface LimitState {
  limitRequests: number | null;
  remainingRequests: number | null;
  /** Milliseconds until the request bucket is full again. */
  resetRequestsMs: number | null;
  limitTokens: number | null;
  remainingTokens: number | null;
  /** Milliseconds until the token bucket is full again. */
  resetTokensMs: number | null;
}

/** Holds what an admitted request took; release it exactly once when the request ends. */
export interface Lease {
  /**
   * Debits the request's real tokens and frees its concurrency slot. Safe to call twice. Returns
   * a promise only when the release waits for something (a store).
   */
  release(tokens: number): void | Promise<void>;
}

/** The answer of {@linkcode RateLimiter.admit}. */
export type Decision =
  | { ok: true; state: LimitState; lease: Lease }
  | { ok: false; state: LimitState; reason: RefusalReason; retryAfterMs: number };

/** One implementation per backing store, passing one contract suite. */
export interface RateLimiter {
  /**
   * Checks every limit and, only if all pass, takes one request and one concurrency slot. A
   * limiter that decides without waiting (in memory) answers at once rather than with a promise.
   */
  admit(keyId: string, limits: RateLimits): Decision | Promise<Decision>;
  /** Resolves once the backing store is reachable, or after `timeoutMs` (never rejects). */
  ready?(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Capacity of the request bucket. */
export function requestCapacity(limits: RateLimits): number {
  return Math.max(1, limits.burst ?? limits.rpm ?? 1);
}

/** No limits at all: nothing to track. */
export function unlimited(limits: RateLimits): boolean {
  return limits.rpm === null && limits.tpm === null && limits.maxConcurrency === null;
}

/** The state of a key with no limits. */
export const NO_LIMITS: LimitState = Object.freeze({
  limitRequests: null,
  remainingRequests: null,
  resetRequestsMs: null,
  limitTokens: null,
  remainingTokens: null,
  resetTokensMs: null,
});
