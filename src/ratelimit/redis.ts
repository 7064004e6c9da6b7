/**
 * Rate limits shared through Redis: the same algorithm as the in-memory limiter, in Lua scripts
 * (redis_scripts.ts), keys hash-tagged per API key for Redis Cluster and expiring on their own.
 * Admissions of one key arriving in one event-loop turn are one script call, and every call of
 * the turn goes in one pipeline (admission_groups.ts, batcher.ts).
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
import { AdmissionGroups } from "./admission_groups.ts";
import { CommandBatcher } from "./batcher.ts";
import { SettleQueue } from "./settle_queue.ts";
import { Settler } from "./settler.ts";
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

/**
 * The Redis client with ModelGate's scripts, failing fast while Redis is away. Timeouts are the
 * batcher's (one timer per pipeline, not one per command).
 */
export function createRedisClient(url: string): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  });
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

/** Creates the Redis-backed limiter. */
export function createRedisLimiter(options: RedisLimiterOptions): RedisLimiter {
  const client = createRedisClient(options.url);
  const leaseTtl = options.leaseTtlMs ?? 30_000;
  const settleDelay = options.settleDelayMs ?? 10;
  const clockArg = () => (options.clock ? String(options.clock()) : "");
  const metrics = options.metrics ?? new Metrics();
  metrics.describe(
    "modelgate_ratelimit_releases_dropped_total",
    "Concurrency releases dropped while Redis did not answer (their leases expire instead)",
  );
  const queue = new SettleQueue(options.maxPendingReleases ?? 10_000, (dropped) => {
    metrics.inc("modelgate_ratelimit_releases_dropped_total", {}, dropped);
  });
  const groups = new AdmissionGroups();
  const batcher: CommandBatcher = new CommandBatcher(client, {
    timeoutMs: options.timeoutMs ?? 100,
    prepare: () =>
      groups.send({
        call: (args) => batcher.call("mgAdmit", args),
        take: (tag) => queue.take(tag),
        restore: (pending) => {
          queue.restore(pending);
          settler.within(settleDelay);
        },
        clock: clockArg,
        leaseTtlMs: leaseTtl,
      }),
  });
  const settler = new Settler({
    queue,
    log: options.log,
    send: (p) =>
      batcher.call("mgSettle", [
        `${p.tag}:tok`,
        `${p.tag}:slots`,
        clockArg(),
        String(p.tpm),
        String(p.debit),
        ...p.releases,
      ]),
  });
  /** Leases of requests still running: lease id -> key tag. */
  const live = new Map<string, string>();
  /** Lease ids: unique per limiter (random prefix) and cheap to make. */
  const leasePrefix = crypto.randomUUID().slice(0, 13);
  let leaseCount = 0;

  const renew = async () => {
    if (live.size === 0) return;
    const byTag = new Map<string, string[]>();
    for (const [id, tag] of live) {
      const ids = byTag.get(tag);
      if (ids) ids.push(id);
      else byTag.set(tag, [id]);
    }
    // A failed renewal is retried by the next one; a lease outlives two missed renewals.
    await Promise.allSettled(
      [...byTag].map(([tag, ids]) =>
        batcher.call("mgRenew", [`${tag}:slots`, clockArg(), String(leaseTtl), ...ids])
      ),
    );
  };
  const renewTimer = setInterval(() => renew().catch(() => {}), options.renewMs ?? leaseTtl / 3);

  return {
    client,
    settle: () => settler.flush(),
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
      const leaseId = limits.maxConcurrency === null ? "" : `${leasePrefix}${++leaseCount}`;
      const answer = groups.add(tag, limits, leaseId);
      batcher.schedule();
      const admitted = await answer;
      const state = describe(limits, admitted.backlogMs, admitted.tokens);
      if (!admitted.ok) {
        return {
          ok: false,
          state,
          reason: admitted.reason as RefusalReason,
          retryAfterMs: admitted.retryMs,
        };
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
          settler.within(leaseId ? settleDelay : settleDelay * 10);
          return Promise.resolve();
        },
      };
      return { ok: true, state, lease };
    },
    async close() {
      clearInterval(renewTimer);
      // What is still pending is sent once more (the batch timeout bounds the wait).
      await settler.close();
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
