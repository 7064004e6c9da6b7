/**
 * Rate limits shared through Redis: the same algorithm as the in-memory limiter, each check one
 * Lua script (EVALSHA, reloaded on NOSCRIPT by ioredis), time from Redis `TIME` so instances with
 * skewed clocks share one limit, keys hash-tagged per API key for Redis Cluster and expiring on
 * their own. Concurrency slots are leases in a sorted set that expire, so a crashed instance
 * cannot hold a key's slots for ever.
 */
import { Redis } from "ioredis";
import type { Decision, LimitState, RateLimiter, RateLimits, RefusalReason } from "./types.ts";
import { NO_LIMITS, requestCapacity, unlimited } from "./types.ts";

const NOW = `
local now
if ARGV[#ARGV] ~= "" then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** KEYS: requests (GCRA tat), tokens (hash), slots (zset). ARGV: rpm cap tpm maxc lease ttl now. */
const ADMIT = NOW + `
local rpm, cap, tpm, maxc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local inflight = 0
if maxc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[3])
end
local tat, interval = now, 0
if rpm > 0 then
  interval = 60000 / rpm
  local stored = redis.call('GET', KEYS[1])
  if stored then tat = math.max(tonumber(stored), now) end
end
local tokens = 0
if tpm > 0 then
  local h = redis.call('HMGET', KEYS[2], 'tokens', 'at')
  if h[1] then
    tokens = math.min(tpm, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * tpm / 60000)
  else
    tokens = tpm
  end
end
if maxc >= 0 and inflight >= maxc then
  return {0, 'concurrency', 1000, tostring(tat - now), tostring(tokens)}
end
if rpm > 0 and tat - now > (cap - 1) * interval then
  return {0, 'rpm', math.ceil(tat - now - (cap - 1) * interval), tostring(tat - now), tostring(tokens)}
end
if tpm > 0 and tokens < 1 then
  return {0, 'tpm', math.ceil((1 - tokens) / (tpm / 60000)), tostring(tat - now), tostring(tokens)}
end
if rpm > 0 then
  tat = tat + interval
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
end
if tpm > 0 then
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[2], 120000)
end
if maxc >= 0 then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]))
end
return {1, '', 0, tostring(tat - now), tostring(tokens)}
`;

/** KEYS: tokens (hash), slots (zset). ARGV: tpm used lease now. */
const RELEASE = NOW + `
redis.call('ZREM', KEYS[2], ARGV[3])
local tpm = tonumber(ARGV[1])
if tpm > 0 then
  local h = redis.call('HMGET', KEYS[1], 'tokens', 'at')
  local tokens = tpm
  if h[1] then tokens = math.min(tpm, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * tpm / 60000) end
  tokens = tokens - tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.max(120000, math.ceil((tpm - tokens) / (tpm / 60000)) + 1000))
end
return 1
`;

/** Options for {@linkcode createRedisLimiter}. */
export interface RedisLimiterOptions {
  url: string;
  /** Longest wait for one check before it counts as a Redis failure (ms). */
  timeoutMs?: number;
  /** How long a concurrency slot survives without release (ms); covers crashed instances. */
  leaseTtlMs?: number;
  /** Test-only clock passed into the scripts instead of Redis TIME. */
  clock?: () => number;
}

type ScriptClient = Redis & {
  mgAdmit(
    k1: string,
    k2: string,
    k3: string,
    ...args: string[]
  ): Promise<[number, string, number, string, string]>;
  mgRelease(k1: string, k2: string, ...args: string[]): Promise<number>;
};

/** The Redis client with ModelGate's scripts, failing fast while Redis is away. */
export function createRedisClient(url: string, timeoutMs: number): ScriptClient {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: 1000,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  }) as ScriptClient;
  client.on("error", () => {}); // Reported by the callers that fail; reconnects by itself.
  client.defineCommand("mgAdmit", { numberOfKeys: 3, lua: ADMIT });
  client.defineCommand("mgRelease", { numberOfKeys: 2, lua: RELEASE });
  return client;
}

/** Creates the Redis-backed limiter. */
export function createRedisLimiter(
  options: RedisLimiterOptions,
): RateLimiter & { client: Redis; ready(timeoutMs: number): Promise<void> } {
  const client = createRedisClient(options.url, options.timeoutMs ?? 100);
  const leaseTtl = options.leaseTtlMs ?? 15 * 60_000;
  const clockArg = () => (options.clock ? String(options.clock()) : "");
  const num = (value: number | null) => String(value ?? -1);
  return {
    client,
    ready(timeoutMs: number) {
      if (client.status === "ready") return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          client.off("ready", done);
          resolve();
        }
        client.on("ready", done);
      });
    },
    async admit(keyId: string, limits: RateLimits): Promise<Decision> {
      if (unlimited(limits)) {
        return {
          ok: true,
          state: NO_LIMITS,
          lease: { release: () => Promise.resolve() },
        };
      }
      const tag = `mg:rl:{${keyId}}`;
      const leaseId = crypto.randomUUID();
      const [ok, reason, retryMs, backlog, tokens] = await client.mgAdmit(
        `${tag}:req`,
        `${tag}:tok`,
        `${tag}:slots`,
        num(limits.rpm),
        String(requestCapacity(limits)),
        num(limits.tpm),
        num(limits.maxConcurrency),
        leaseId,
        String(leaseTtl),
        clockArg(),
      );
      const state = describe(limits, Number(backlog), Number(tokens));
      if (ok !== 1) {
        return { ok: false, state, reason: reason as RefusalReason, retryAfterMs: Number(retryMs) };
      }
      // With only rpm set there is nothing to give back: skip the second round trip.
      if (limits.tpm === null && limits.maxConcurrency === null) {
        return { ok: true, state, lease: { release: () => Promise.resolve() } };
      }
      let released = false;
      return {
        ok: true,
        state,
        lease: {
          async release(used: number) {
            if (released) return;
            released = true;
            await client.mgRelease(
              `${tag}:tok`,
              `${tag}:slots`,
              num(limits.tpm),
              String(Math.max(0, used)),
              leaseId,
              clockArg(),
            );
          },
        },
      };
    },
    async close() {
      client.disconnect();
      await Promise.resolve();
    },
  };
}

function describe(limits: RateLimits, backlogMs: number, tokens: number): LimitState {
  const interval = limits.rpm ? 60_000 / limits.rpm : 0;
  const backlog = Math.max(0, backlogMs);
  return {
    limitRequests: limits.rpm,
    remainingRequests: limits.rpm === null
      ? null
      : Math.max(0, Math.floor(requestCapacity(limits) - backlog / interval)),
    resetRequestsMs: limits.rpm === null ? null : Math.ceil(backlog),
    limitTokens: limits.tpm,
    remainingTokens: limits.tpm === null ? null : Math.max(0, Math.floor(tokens)),
    resetTokensMs: limits.tpm === null
      ? null
      : Math.ceil(Math.max(0, limits.tpm - tokens) / (limits.tpm / 60_000)),
  };
}
