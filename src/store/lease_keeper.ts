/**
 * What one instance holds of each budget (a block) and the upkeep of its leases: growing one when
 * requests need more, renewing, shrinking and returning them, and noticing when one was deleted
 * elsewhere (a usage reset, or another instance that found it expired).
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { readBudget } from "./budget.ts";
import { type BudgetDimension, budgetKey, leaseKey } from "./kv_keys.ts";
import {
  addLeaseWrite,
  type BudgetRef,
  commitLeaseWrites,
  laterStamp,
  type LeaseWrite,
  type LeaseWriter,
} from "./quota_lease.ts";

/** This instance's share of one budget. */
export interface Block extends BudgetRef {
  id: string;
  limit: number;
  /** What this instance holds: reserved in its lease and not yet consumed and written. */
  total: number;
  /** Reserved by requests in flight. */
  inFlight: number;
  /** Consumed since the last flush (still part of `total`). */
  pending: number;
  /** The amount of the lease in KV (0: none); at least `total` until the lease is rewritten. */
  written: number;
  /** The budget's version entry as this instance last wrote it. */
  stamp: string | null;
  renewedAt: number;
  lastUsed: number;
  /** Settles when the block's last lease change queued so far is done. */
  lock: Promise<unknown>;
  /** Lease changes queued on `lock` and not done: while there are any, requests wait too. */
  queued: number;
  /** The key was deleted: its usage is no longer written. */
  deleted: boolean;
  /** Dropped from the broker's blocks (idle, without a lease): never used again. */
  retired: boolean;
  /**
   * The budget's `used` as this instance last saw it (when it last grew its lease), plus what it
   * wrote since: what other instances wrote meanwhile is not in it until the next lease change.
   */
  usedSeen: number;
}

/** The id of one budget of a key (of its block, or of its usage when it has no limit). */
export function budgetId(keyId: string, dimension: BudgetDimension, day: string | null): string {
  return `${keyId}|${dimension}|${day}`;
}

/** A block holding nothing yet. */
export function newBlock(ref: BudgetRef, limit: number, now: number): Block {
  return {
    ...ref,
    id: budgetId(ref.keyId, ref.dimension, ref.day),
    limit,
    total: 0,
    inFlight: 0,
    pending: 0,
    written: 0,
    stamp: null,
    renewedAt: now,
    lastUsed: now,
    lock: Promise.resolve(),
    queued: 0,
    deleted: false,
    usedSeen: 0,
    retired: false,
  };
}

/**
 * Runs `change` once every change queued on the block before it is done, so lease changes of one
 * block never interleave; `block.queued` counts them meanwhile.
 */
export function whenIdle<T>(block: Block, change: () => Promise<T>): Promise<T> {
  block.queued++;
  const run = block.lock.then(change).finally(() => {
    block.queued--;
  });
  block.lock = run.catch(() => {});
  return run;
}

/** The UTC day of a time, as the daily counters name it. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const DAY_MS = 86_400_000;

/** {@linkcode utcDay} for a clock read per request: computed again only when the day changes. */
export class UtcDayCache {
  #day = "";
  #start = 0;
  #end = 0;

  /** The UTC day of `ms`. */
  of(ms: number): string {
    if (ms >= this.#start && ms < this.#end) return this.#day;
    this.#day = utcDay(ms);
    this.#start = Math.floor(ms / DAY_MS) * DAY_MS;
    this.#end = this.#start + DAY_MS;
    return this.#day;
  }
}

/** Options for {@linkcode LeaseKeeper}. */
export interface LeaseKeeperOptions {
  writer: LeaseWriter;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  idleMs: number;
  renewMs: number;
}

const MAX_ATTEMPTS = 20;
/** Share of a budget an instance may hold beyond what its requests in flight reserved. */
const SLACK_SHARE = 0.05;

/** Keeps this instance's leases in KV in line with its blocks. */
export class LeaseKeeper {
  #kv: Deno.Kv;
  #writer: LeaseWriter;
  #log: Logger;
  #metrics: Metrics;
  #now: () => number;
  #idleMs: number;
  #renewMs: number;

  constructor(options: LeaseKeeperOptions) {
    this.#writer = options.writer;
    this.#kv = options.writer.kv;
    this.#log = options.log;
    this.#metrics = options.metrics;
    this.#now = options.now;
    this.#idleMs = options.idleMs;
    this.#renewMs = options.renewMs;
    this.#metrics.describe(
      "modelgate_quota_leases_lost_total",
      "Leases this instance found released elsewhere (usage reset, or expired while cut off)",
    );
  }

  get #instance(): string {
    return this.#writer.instance;
  }

  /**
   * Grows this instance's lease so the block can take `need`: by what is missing and up to 5% of
   * the budget, if `used` and every live lease leave room. Expired leases are deleted on the way.
   */
  async grow(block: Block, need: number): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.#now();
      // Read before KV: a flush of this instance landing meanwhile then counts twice, never zero.
      let holding = block.total;
      const state = await readBudget(this.#kv, block, now);
      block.usedSeen = state.used;
      const mine = [...state.live, ...state.expired].find((l) => l.instance === this.#instance);
      if (!mine && block.written > 0) {
        this.lost(block);
        holding = 0;
      }
      const others = state.live.reduce(
        (sum, lease) => sum + (lease.instance === this.#instance ? 0 : lease.amount),
        0,
      );
      const available = block.limit - state.used - others - holding;
      const short = need - (holding - block.inFlight - block.pending);
      if (available < short) return false;
      const size = Math.min(available, Math.max(short, Math.ceil(block.limit * SLACK_SHARE)));
      const write = { budget: block, amount: holding + size, stamp: state.version.versionstamp };
      const op = addLeaseWrite(this.#kv.atomic(), this.#writer, write, now);
      for (const lease of state.expired) {
        if (lease.instance !== this.#instance) op.delete(lease.key);
      }
      const result = await op.commit();
      if (!result.ok) continue;
      block.total += size;
      this.#wrote(block, write.amount, result.versionstamp, now);
      return true;
    }
    throw new Error("Quota reservation kept conflicting");
  }

  #wrote(block: Block, amount: number, stamp: string, now: number): void {
    block.written = amount;
    block.stamp = laterStamp(block.stamp, stamp);
    block.renewedAt = now;
  }

  /** The lease is gone from KV: what the block held is no longer reserved. */
  release(block: Block): void {
    block.total = 0;
    block.written = 0;
    block.stamp = null;
  }

  /** Releases a block whose lease was deleted elsewhere. */
  lost(block: Block): void {
    this.release(block);
    this.#metrics.inc("modelgate_quota_leases_lost_total");
    this.#log.warn("quota lease was released elsewhere; requests in flight reserve again", {
      key_id: block.keyId,
      dimension: block.dimension,
    });
  }

  /**
   * Shrinks what each block holds to its requests in flight plus 5% of the budget (nothing when
   * idle or `all`), then rewrites the leases that are due for renewal, that hold more than that
   * in KV, or that are to be returned. Batched; a budget whose version moved is read again and
   * retried. Idle blocks without a lease are dropped from `blocks`.
   */
  async maintain(blocks: Map<string, Block>, now: number, all: boolean): Promise<void> {
    const due: { block: Block; write: LeaseWrite }[] = [];
    for (const [id, block] of blocks) {
      const needed = block.inFlight + block.pending;
      const idle = needed === 0 && now - block.lastUsed >= this.#idleMs;
      const cap = Math.ceil(block.limit * SLACK_SHARE);
      block.total = Math.min(block.total, all || idle ? needed : needed + cap);
      if (block.written > 0) {
        const renew = now - block.renewedAt >= this.#renewMs;
        if (all || renew || block.total === 0 || block.written > needed + cap) {
          due.push({ block, write: { budget: block, amount: block.total, stamp: block.stamp } });
        }
      } else if (idle && block.queued === 0) {
        // It holds nothing and nothing waits on it: a new request makes it again (and would have
        // to grow its lease anyway), so the blocks kept follow the keys in use, not all keys.
        blocks.delete(id);
        block.retired = true;
      }
    }
    if (due.length === 0) return;
    try {
      const stamps = await commitLeaseWrites(this.#writer, due.map((d) => d.write), now);
      const retry: Block[] = [];
      due.forEach(({ block, write }, i) => {
        const stamp = stamps[i];
        if (stamp === null) retry.push(block);
        else this.#wrote(block, write.amount, stamp, now);
      });
      await Promise.all(retry.map((block) => this.#rewrite(block, now)));
    } catch (err) {
      throw new Error(`Quota lease renewal failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Rewrites one lease after its budget changed: unless the lease was deleted meanwhile. */
  #rewrite(block: Block, now: number): Promise<void> {
    return whenIdle(block, async () => {
      const { keyId, dimension, day } = block;
      const [version, mine] = await this.#kv.getMany([
        budgetKey(keyId, dimension, day, "version"),
        leaseKey(keyId, dimension, day, this.#instance),
      ]);
      if (mine.versionstamp === null) {
        if (block.written > 0) this.lost(block);
        return;
      }
      const write = { budget: block, amount: block.total, stamp: version.versionstamp };
      const [stamp] = await commitLeaseWrites(this.#writer, [write], now);
      if (stamp !== null) this.#wrote(block, write.amount, stamp, now);
    });
  }
}
