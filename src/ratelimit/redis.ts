/**
 * Rate limits shared through Redis: the same algorithm as the in-memory limiter, each admission
 * one Lua script (scripts in redis_scripts.ts), keys hash-tagged per API key for Redis Cluster and
 * expiring on their own. Commands issued together are sent together (ioredis auto-pipelining).
 *
 * A finished request costs no round trip of its own: its tokens to debit and its concurrency
 * lease to release wait in memory and ride on the key's next admission, or on one pipeline sent
 * `settleDelayMs` later. A failed settlement is sent again until Redis answers. Concurrency
 * leases live `leaseTtlMs` and are renewed while their request runs (one pipeline for all of
 * them every `renewMs`), so a lease whose release never arrives (crash, lost connection) frees
 * its slot within seconds.
 */
import { Redis } from "ioredis";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { ADMIT, RENEW, SETTLE } from "./redis_scripts.ts";
import { type Pending, SettleQueue } from "./settle_queue.ts";
import type {
  Decision,
  Lease,
  LimitState,
  RateLimiter,
  RateLimits,
  RefusalReason,
} from "./types.ts";
import { NO_LIMITS, requestCapacity, unlimited } from "./types.ts";

/** Options for {@linkcode createRedisLimiter}. */
export interface RedisLimiterOptions {
  url: string;
  /** Longest wait for one check before it counts as a Redis failure (ms). */
  timeoutMs?: number;
  /** How long a concurrency lease survives without renewal (ms, default 30 s). */
  leaseTtlMs?: number;
  /** How often leases of running requests are renewed (ms, default a third of the TTL). */
  renewMs?: number;
  /** Longest wait before a released slot is sent when no admission carries it (ms, default 10). */
  settleDelayMs?: number;
  /** Pending lease releases kept while Redis does not answer (default 10,000). */
  maxPendingReleases?: number;
  metrics?: Metrics;
  log?: Logger;
  /** Test-only clock passed into the scripts instead of Redis TIME. */
  clock?: () => number;
}

type Reply = [number, string, number, string, string];

type ScriptClient = Redis & {
  mgAdmit(k1: string, k2: string, k3: string, ...args: string[]): Promise<Reply>;
  mgSettle(k1: string, k2: string, ...args: string[]): Promise<number>;
  mgRenew(k1: string, ...args: string[]): Promise<number>;
};

/** The Redis client with ModelGate's scripts, failing fast while Redis is away. */
export function createRedisClient(url: string, timeoutMs: number): ScriptClient {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: 1000,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  }) as ScriptClient;
  client.on("error", () => {}); // Reported by the callers that fail; reconnects by itself.
  client.defineCommand("mgAdmit", { numberOfKeys: 3, lua: ADMIT });
  client.defineCommand("mgSettle", { numberOfKeys: 2, lua: SETTLE });
  client.defineCommand("mgRenew", { numberOfKeys: 1, lua: RENEW });
  return client;
}

/** The Redis limiter, with what its owner (and tests) may drive directly. */
export interface RedisLimiter extends RateLimiter {
  client: Redis;
  ready(timeoutMs: number): Promise<void>;
  /** Sends every pending settlement now. */
  settle(): Promise<void>;
  /** Renews the leases of running requests now. */
  renew(): Promise<void>;
  /** Lease releases waiting to be sent. */
  readonly pendingReleases: number;
}

const NOOP_LEASE: Lease = { release: () => Promise.resolve() };
const RETRY_MS = [100, 250, 500, 1000, 2000];

/** Creates the Redis-backed limiter. */
export function createRedisLimiter(options: RedisLimiterOptions): RedisLimiter {
  const client = createRedisClient(options.url, options.timeoutMs ?? 100);
  const leaseTtl = options.leaseTtlMs ?? 30_000;
  const settleDelay = options.settleDelayMs ?? 10;
  const metrics = options.metrics ?? new Metrics();
  metrics.describe(
    "modelgate_ratelimit_releases_dropped_total",
    "Concurrency releases dropped while Redis did not answer (their leases expire instead)",
  );
  const queue = new SettleQueue(options.maxPendingReleases ?? 10_000, (dropped) => {
    metrics.inc("modelgate_ratelimit_releases_dropped_total", {}, dropped);
  });
  /** Leases of requests still running: lease id -> key tag. */
  const live = new Map<string, string>();
  const clockArg = () => (options.clock ? String(options.clock()) : "");
  const num = (value: number | null) => String(value ?? -1);

  let settleTimer: ReturnType<typeof setTimeout> | null = null;
  let settleAt = Infinity;
  let failures = 0;
  let settling: Promise<void> | null = null;
  let closed = false;
  const schedule = (delayMs: number) => {
    if (closed) return;
    const at = Date.now() + delayMs;
    if (settleTimer !== null && settleAt <= at) return;
    if (settleTimer !== null) clearTimeout(settleTimer);
    settleAt = at;
    settleTimer = setTimeout(() => {
      settleTimer = null;
      settleAt = Infinity;
      settle().catch(() => {});
    }, delayMs);
  };
  const settle = (): Promise<void> => {
    settling ??= sendSettlements().finally(() => {
      settling = null;
    });
    return settling;
  };
  const sendSettlements = async () => {
    const pending = queue.drain();
    if (pending.length === 0) return;
    const failed: Pending[] = [];
    try {
      const pipeline = client.pipeline() as unknown as ScriptClient & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const p of pending) {
        pipeline.mgSettle(
          `${p.tag}:tok`,
          `${p.tag}:slots`,
          clockArg(),
          String(p.tpm),
          String(p.debit),
          ...p.releases,
        );
      }
      const results = await pipeline.exec();
      pending.forEach((p, i) => {
        if (!results || results[i][0]) failed.push(p);
      });
    } catch {
      failed.push(...pending);
    }
    // Sent again until Redis answers. (A settlement that timed out may have been applied: its
    // releases are idempotent; its debit then counts twice, which errs on the strict side.)
    for (const p of failed) queue.restore(p);
    if (failed.length > 0) {
      if (failures === 0) {
        options.log?.warn("rate-limit settlement failed in redis; retrying", {
          keys: failed.length,
        });
      }
      schedule(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]);
    } else {
      failures = 0;
    }
  };

  const renew = async () => {
    if (live.size === 0) return;
    const byTag = new Map<string, string[]>();
    for (const [id, tag] of live) {
      const ids = byTag.get(tag);
      if (ids) ids.push(id);
      else byTag.set(tag, [id]);
    }
    const pipeline = client.pipeline() as unknown as ScriptClient & { exec(): Promise<unknown> };
    for (const [tag, ids] of byTag) {
      pipeline.mgRenew(`${tag}:slots`, clockArg(), String(leaseTtl), ...ids);
    }
    // A failed renewal is retried by the next one; a lease outlives two missed renewals.
    await pipeline.exec().catch(() => {});
  };
  const renewTimer = setInterval(() => renew().catch(() => {}), options.renewMs ?? leaseTtl / 3);

  return {
    client,
    settle,
    renew,
    get pendingReleases() {
      return queue.releases;
    },
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
      if (unlimited(limits)) return { ok: true, state: NO_LIMITS, lease: NOOP_LEASE };
      const tag = `mg:rl:{${keyId}}`;
      const leaseId = limits.maxConcurrency === null ? "" : crypto.randomUUID();
      const carried = queue.take(tag);
      let reply: Reply;
      try {
        reply = await client.mgAdmit(
          `${tag}:req`,
          `${tag}:tok`,
          `${tag}:slots`,
          clockArg(),
          num(limits.rpm),
          String(requestCapacity(limits)),
          num(limits.tpm),
          num(limits.maxConcurrency),
          leaseId,
          String(leaseTtl),
          String(carried?.debit ?? 0),
          ...(carried?.releases ?? []),
        );
      } catch (err) {
        if (carried) {
          queue.restore(carried);
          schedule(settleDelay);
        }
        throw err;
      }
      const [ok, reason, retryMs, backlog, tokens] = reply;
      const state = describe(limits, Number(backlog), Number(tokens));
      if (ok !== 1) {
        return { ok: false, state, reason: reason as RefusalReason, retryAfterMs: Number(retryMs) };
      }
      // With only rpm set there is nothing to give back.
      if (limits.tpm === null && limits.maxConcurrency === null) {
        return { ok: true, state, lease: NOOP_LEASE };
      }
      if (leaseId) live.set(leaseId, tag);
      const tpm = limits.tpm ?? -1;
      let released = false;
      const lease: Lease = {
        release(used: number) {
          if (released) return Promise.resolve();
          released = true;
          const debit = tpm > 0 ? Math.max(0, Math.ceil(used) || 0) : 0;
          if (leaseId) live.delete(leaseId);
          if (debit === 0 && !leaseId) return Promise.resolve();
          queue.add(tag, tpm, debit, leaseId || null);
          // A freed slot is sent soon; a debit alone can wait for the key's next admission.
          schedule(leaseId ? settleDelay : settleDelay * 10);
          return Promise.resolve();
        },
      };
      return { ok: true, state, lease };
    },
    async close() {
      closed = true;
      clearInterval(renewTimer);
      if (settleTimer !== null) clearTimeout(settleTimer);
      settleTimer = null;
      // What is still pending is sent once more (the command timeout bounds the wait).
      await settling;
      if (client.status === "ready") await settle();
      client.disconnect();
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
