/** Per-key rate limits on /v1, with OpenAI's `x-ratelimit-*` headers on every response. */
import type { Context } from "hono";
import type { GatewayEnv } from "../context.ts";
import { GatewayError } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { Decision, LimitState, RateLimiter } from "../ratelimit/types.ts";
import type { Step } from "./step.ts";

/** Formats milliseconds as OpenAI does in reset headers: `20ms`, `1s`, `6m0s`, `1.5s`. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 10) / 100;
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}

function setHeaders(c: Context<GatewayEnv>, state: LimitState): void {
  const set = (name: string, value: number | null, format = (v: number) => String(v)) => {
    if (value !== null) c.header(name, format(value));
  };
  set("x-ratelimit-limit-requests", state.limitRequests);
  set("x-ratelimit-remaining-requests", state.remainingRequests);
  set("x-ratelimit-reset-requests", state.resetRequestsMs, formatReset);
  set("x-ratelimit-limit-tokens", state.limitTokens);
  set("x-ratelimit-remaining-tokens", state.remainingTokens);
  set("x-ratelimit-reset-tokens", state.resetTokensMs, formatReset);
}

const MESSAGES = {
  rpm: "Rate limit reached for requests per minute",
  tpm: "Rate limit reached for tokens per minute",
  concurrency: "Too many requests in flight for this key",
} as const;

/**
 * Admits the request under the key's limits or refuses it with 429 (503 when the shared store is
 * down and `redis.on_error` is `closed`). An admitted request's lease is released by an exchange
 * finisher, so the slot is freed and real tokens debited however the request ends.
 */
export function rateLimitStep(limiter: RateLimiter, metrics: Metrics): Step {
  metrics.describe("modelgate_rate_limited_total", "Requests refused by rate limits, by reason");
  const decide = (c: Context<GatewayEnv>, decision: Decision) => {
    setHeaders(c, decision.state);
    if (!decision.ok) {
      metrics.inc("modelgate_rate_limited_total", { reason: decision.reason });
      const retry = {
        "retry-after": String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))),
        "retry-after-ms": String(Math.max(0, Math.ceil(decision.retryAfterMs))),
      };
      if (decision.reason === "unavailable") {
        throw new GatewayError("Rate limits cannot be checked right now; try again shortly", {
          status: 503,
          type: "api_error",
          code: "rate_limit_unavailable",
          headers: retry,
        });
      }
      throw new GatewayError(MESSAGES[decision.reason], {
        status: 429,
        type: "rate_limit_error",
        code: "rate_limit_exceeded",
        headers: retry,
      });
    }
    const lease = decision.lease;
    c.get("exchange").finishers.push((done) => lease.release(done.usage.total_tokens));
  };
  return function applyRateLimit(c) {
    const key = c.get("key");
    // Keys stored before rates of 0 were refused at creation: such a key admits nothing.
    if (key.rpm === 0 || key.burst === 0 || key.tpm === 0 || key.max_concurrency === 0) {
      throw new GatewayError("This key's rate limits admit no requests (a limit of 0 is set)", {
        status: 429,
        type: "rate_limit_error",
        code: "rate_limit_exceeded",
        headers: { "retry-after": "60", "retry-after-ms": "60000" },
      });
    }
    const decision = limiter.admit(key.id, {
      rpm: key.rpm,
      burst: key.burst,
      tpm: key.tpm,
      maxConcurrency: key.max_concurrency,
    });
    // Only a limiter that waits (Redis) makes the pipeline wait.
    if (decision instanceof Promise) return decision.then((answer) => decide(c, answer));
    decide(c, decision);
  };
}
