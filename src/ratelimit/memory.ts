/**
 * Rate limits in this process's memory: the default for one instance.
 *
 * Requests: GCRA (a token bucket kept as one "theoretical arrival time"): one request per
 * 60000/rpm ms, up to `burst` at once from a full bucket. Tokens: a bucket of `tpm` that refills
 * continuously at tpm per minute and is debited with real usage when a request ends; admission
 * needs at least one token left. Refused requests change nothing.
 */
import {
  type Decision,
  type Lease,
  type LimitState,
  NO_LIMITS,
  type RateLimiter,
  type RateLimits,
  requestCapacity,
  unlimited,
} from "./types.ts";

interface KeyState {
  tat: number;
  tokens: number;
  tokensAt: number;
  inFlight: number;
  touched: number;
}

const IDLE_EVICT_MS = 10 * 60_000;

/** Creates the in-memory limiter; `now` in ms is injectable for tests. */
export function createMemoryLimiter(now: () => number = Date.now): RateLimiter {
  const keys = new Map<string, KeyState>();
  let lastSweep = now();

  const sweep = (t: number) => {
    if (t - lastSweep < IDLE_EVICT_MS) return;
    lastSweep = t;
    for (const [id, state] of keys) {
      if (state.inFlight === 0 && t - state.touched > IDLE_EVICT_MS && state.tat <= t) {
        keys.delete(id);
      }
    }
  };

  return {
    admit(keyId: string, limits: RateLimits): Decision {
      if (unlimited(limits)) {
        return { ok: true, state: NO_LIMITS, lease: NOOP_LEASE };
      }
      const t = now();
      sweep(t);
      let state = keys.get(keyId);
      if (!state) {
        state = { tat: t, tokens: limits.tpm ?? 0, tokensAt: t, inFlight: 0, touched: t };
        keys.set(keyId, state);
      }
      state.touched = t;
      refill(state, limits, t);
      const interval = limits.rpm ? 60_000 / limits.rpm : 0;
      const capacity = requestCapacity(limits);
      const tat = Math.max(state.tat, t);
      const view = (newTat: number) => describe(limits, state!, newTat, t);
      if (limits.maxConcurrency !== null && state.inFlight >= limits.maxConcurrency) {
        return { ok: false, state: view(tat), reason: "concurrency", retryAfterMs: 1000 };
      }
      if (limits.rpm !== null && tat - t > (capacity - 1) * interval) {
        const wait = Math.ceil(tat - t - (capacity - 1) * interval);
        return { ok: false, state: view(tat), reason: "rpm", retryAfterMs: wait };
      }
      if (limits.tpm !== null && state.tokens < 1) {
        const wait = Math.ceil((1 - state.tokens) / (limits.tpm / 60_000));
        return { ok: false, state: view(tat), reason: "tpm", retryAfterMs: wait };
      }
      if (limits.rpm !== null) state.tat = tat + interval;
      state.inFlight++;
      const taken = state;
      let released = false;
      const lease: Lease = {
        release(tokens: number) {
          if (released) return;
          released = true;
          taken.inFlight = Math.max(0, taken.inFlight - 1);
          if (limits.tpm !== null) {
            refill(taken, limits, now());
            taken.tokens -= Math.max(0, tokens);
          }
        },
      };
      return { ok: true, state: view(state.tat), lease };
    },
    close() {
      keys.clear();
      return Promise.resolve();
    },
  };
}

const NOOP_LEASE: Lease = { release: () => {} };

function refill(state: KeyState, limits: RateLimits, t: number): void {
  if (limits.tpm === null) return;
  const elapsed = Math.max(0, t - state.tokensAt);
  state.tokens = Math.min(limits.tpm, state.tokens + elapsed * limits.tpm / 60_000);
  state.tokensAt = t;
}

function describe(limits: RateLimits, state: KeyState, tat: number, t: number): LimitState {
  const interval = limits.rpm ? 60_000 / limits.rpm : 0;
  const capacity = requestCapacity(limits);
  const backlog = Math.max(0, tat - t);
  return {
    limitRequests: limits.rpm,
    remainingRequests: limits.rpm === null
      ? null
      : Math.max(0, Math.floor(capacity - backlog / interval)),
    resetRequestsMs: limits.rpm === null ? null : Math.ceil(backlog),
    limitTokens: limits.tpm,
    remainingTokens: limits.tpm === null ? null : Math.max(0, Math.floor(state.tokens)),
    resetTokensMs: limits.tpm === null
      ? null
      : Math.ceil(Math.max(0, limits.tpm - state.tokens) / (limits.tpm / 60_000)),
  };
}
