/**
 * Chooses the limiter from the config and keeps the gateway serving when Redis fails:
 * `local` falls back to this instance's memory, `open` admits, `closed` refuses with 503.
 * The Redis client reconnects by itself; the next check that succeeds returns to shared limits.
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { createMemoryLimiter } from "./memory.ts";
import { createRedisLimiter } from "./redis.ts";
import { type Decision, NO_LIMITS, type RateLimiter, type RateLimits } from "./types.ts";

/** Options for {@linkcode createRateLimiter}. */
export interface RateLimiterOptions {
  redisUrl: string | null;
  onError: "local" | "open" | "closed";
  log: Logger;
  metrics: Metrics;
  now?: () => number;
  /** Test-only: passed to the Redis scripts instead of Redis TIME. */
  redisClock?: () => number;
  timeoutMs?: number;
}

/** The configured limiter: in memory without `redis.url`, else Redis with the `on_error` policy. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const memory = createMemoryLimiter(options.now);
  if (!options.redisUrl) return memory;
  const redis = createRedisLimiter({
    url: options.redisUrl,
    clock: options.redisClock,
    timeoutMs: options.timeoutMs,
    metrics: options.metrics,
    log: options.log,
  });
  let failing = false;
  options.metrics.describe(
    "modelgate_ratelimit_redis_failures_total",
    "Rate-limit checks Redis could not answer",
  );
  return {
    ready: (timeoutMs: number) => redis.ready(timeoutMs),
    async admit(keyId: string, limits: RateLimits): Promise<Decision> {
      try {
        const decision = await redis.admit(keyId, limits);
        if (failing) {
          failing = false;
          options.log.info("redis is back: rate limits are shared again");
        }
        // Its lease never fails: a release Redis does not take is kept and sent again.
        return decision;
      } catch (err) {
        options.metrics.inc("modelgate_ratelimit_redis_failures_total", { mode: options.onError });
        if (!failing) {
          failing = true;
          options.log.error("redis rate-limit check failed", {
            on_error: options.onError,
            error: (err as Error).message,
          });
        }
        if (options.onError === "local") return memory.admit(keyId, limits);
        if (options.onError === "open") {
          return { ok: true, state: NO_LIMITS, lease: { release: () => Promise.resolve() } };
        }
        return { ok: false, state: NO_LIMITS, reason: "unavailable", retryAfterMs: 1000 };
      }
    },
    async close() {
      await redis.close();
      await memory.close();
    },
  };
}
