/**
 * Quota reservations without a KV round trip per request.
 *
 * Each instance holds a lease on every budget it serves: `["quota_lease", key, dimension, day,
 * instance] -> { amount, expires }`. Growing a lease is one atomic operation that checks the
 * budget's version entry and admits the growth only if `used` plus every live lease fits the
 * budget; requests then reserve from the lease in memory. So all instances together can never
 * reserve more than the budget; a key goes over only by what requests used beyond their own
 * reservation. Usage is written back in batches every `flushMs` (`used` grows; the consumed part
 * leaves the lease). Beyond what its requests in flight reserved, an instance keeps at most 5% of
 * a budget, and nothing once the budget is idle for `idleMs`. A lease is renewed every `renewMs`;
 * one that is not renewed for `leaseTtlMs` (its instance was killed or cut off from KV) stops
 * counting, and the next lease change deletes it.
 */
import { LogGate } from "../log_gate.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { safeAmount } from "./amount.ts";
import { kvCounter, type KvWrite } from "./kv_batch.ts";
import { commitWrites } from "./kv_commit.ts";
import { type BudgetDimension, budgetKey } from "./kv_keys.ts";
import { BudgetIndex, DIMENSIONS, type KeyBudgets } from "./key_budgets.ts";
import { type Block, LeaseKeeper, utcDay, UtcDayCache, whenIdle } from "./lease_keeper.ts";
import type { KeyRecord } from "./model.ts";
import { createHousekeeping } from "./quota_housekeeping.ts";
import type { BudgetRef } from "./quota_lease.ts";

export { utcDay };

/** Why a reservation was refused. */
export type QuotaRefusal = "quota" | "daily_tokens" | "daily_requests";

/** What one request holds until it settles. */
export interface Reservation {
  keyId: string;
  day: string;
  /** What it took from each block. */
  needs: { block: Block; need: number }[];
  /** The key's budgets when it was made: the dimensions without a block only count usage. */
  budgets: KeyBudgets;
}

/** Result of {@linkcode QuotaBroker.reserve}. */
export type ReserveResult = { ok: true; reservation: Reservation } | {
  ok: false;
  reason: QuotaRefusal;
};

/** What is left of one budget. */
export interface BudgetHeadroom {
  limit: number;
  remaining: number;
  /** Until the budget is full again, or null when it never resets. */
  resetMs: number | null;
}

/** What is left of a key's token and request budgets (null: no such budget). */
export interface Headroom {
  tokens: BudgetHeadroom | null;
  requests: BudgetHeadroom | null;
}

function msToMidnight(now: number): number {
  return 86_400_000 - (now % 86_400_000);
}

/** Options for {@linkcode QuotaBroker}. */
export interface QuotaBrokerOptions {
  kv: Deno.Kv;
  now: () => number;
  log: Logger;
  metrics?: Metrics;
  flushMs?: number;
  /** A budget unused this long is given back whole (default 1 s). */
  idleMs?: number;
  /** A lease not renewed this long stops counting (default 30 s). */
  leaseTtlMs?: number;
  /** How often live leases are renewed (default a third of the TTL). */
  renewMs?: number;
  /** False: no timer, the owner calls `flush()` (tests). */
  autoFlush?: boolean;
  /** This instance's name in its leases (default random). */
  instanceId?: string;
}

/** Why a reservation is refused, per dimension of {@linkcode DIMENSIONS}. */
const REFUSALS: readonly QuotaRefusal[] = ["quota", "daily_tokens", "daily_requests"];

/** Reserves quota in memory from leases taken atomically in KV, and writes usage back. */
export class QuotaBroker {
  /** This instance's name in its leases. */
  readonly instanceId: string;
  #kv: Deno.Kv;
  #now: () => number;
  #log: Logger;
  #metrics: Metrics;
  #keeper: LeaseKeeper;
  #blocks = new Map<string, Block>();
  #budgets = new BudgetIndex(this.#blocks);
  #today = new UtcDayCache();
  /** Usage of keys without a budget in a dimension: only `used` grows. */
  #untracked = new Map<string, BudgetRef & { amount: number }>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #flushing: Promise<void> | null = null;
  #housekeeping: (now: number) => void;
  #failureGate: LogGate;

  constructor(options: QuotaBrokerOptions) {
    this.#kv = options.kv;
    this.#now = options.now;
    this.#log = options.log;
    this.#metrics = options.metrics ?? new Metrics();
    const ttlMs = options.leaseTtlMs ?? 30_000;
    this.instanceId = options.instanceId ?? crypto.randomUUID();
    this.#keeper = new LeaseKeeper({
      writer: { kv: this.#kv, instance: this.instanceId, ttlMs },
      log: this.#log,
      metrics: this.#metrics,
      now: this.#now,
      idleMs: options.idleMs ?? 1000,
      renewMs: options.renewMs ?? Math.floor(ttlMs / 3),
    });
    this.#failureGate = new LogGate(10_000, options.now);
    this.#housekeeping = createHousekeeping(this.#kv, this.#log);
    this.#metrics.describe(
      "modelgate_quota_usage_dropped_total",
      "Usage KV refused to count, by budget dimension",
    );
    this.#metrics.gauge(
      "modelgate_quota_held",
      "Tokens and requests this instance holds in its quota leases",
      () => [...this.#blocks.values()].reduce((sum, block) => sum + block.written, 0),
    );
    if (options.autoFlush !== false) {
      this.#timer = setInterval(() => this.flush().catch(() => {}), options.flushMs ?? 100);
    }
  }

  /** Budgets this instance keeps in memory: those of keys in use or holding a lease. */
  get budgetsHeld(): number {
    return this.#blocks.size;
  }

  /**
   * Reserves `tokens` (and one request) for a request of `key`. Synchronous while the blocks hold
   * enough and no lease change is under way (nearly always); a promise when a lease must grow.
   */
  reserve(key: KeyRecord, tokens: number): ReserveResult | Promise<ReserveResult> {
    const now = this.#now();
    const day = this.#today.of(now);
    const budgets = this.#budgets.of(key, day, now);
    const reservation: Reservation = { keyId: key.id, day, needs: [], budgets };
    return this.#reserveFrom(reservation, 0, safeAmount(tokens));
  }

  /** Takes from the blocks of dimension `from` on; waits only for a block that must grow. */
  #reserveFrom(
    reservation: Reservation,
    from: number,
    tokens: number,
  ): ReserveResult | Promise<ReserveResult> {
    const blocks = reservation.budgets.blocks;
    for (let i = from; i < blocks.length; i++) {
      const block = blocks[i];
      if (block === null) continue;
      const need = DIMENSIONS[i] === "day_requests" ? 1 : tokens;
      if (block.queued === 0 && block.total - block.inFlight - block.pending >= need) {
        block.inFlight += need;
        reservation.needs.push({ block, need });
        continue;
      }
      return this.#take(block, need).then((taken) => {
        if (!taken) {
          this.#undo(reservation);
          return { ok: false, reason: REFUSALS[i] };
        }
        reservation.needs.push({ block, need });
        return this.#reserveFrom(reservation, i + 1, tokens);
      }, (err) => {
        this.#undo(reservation);
        throw err;
      });
    }
    return { ok: true, reservation };
  }

  /**
   * What is left of the key's token and request budgets after this reservation, as far as this
   * instance knows (usage other instances wrote since its last lease change is not seen): for the
   * `x-ratelimit-*` headers of keys without a per-minute limit. Of the lifetime quota and today's
   * budget, the one with less left is reported; `resetMs` is the time to 00:00 UTC for a daily
   * budget, null for the lifetime quota.
   */
  headroom(reservation: Reservation): Headroom {
    const blocks = reservation.budgets.blocks;
    const left = (block: Block | null): BudgetHeadroom | null =>
      block === null ? null : {
        limit: block.limit,
        remaining: Math.max(0, block.limit - block.usedSeen - block.pending - block.inFlight),
        resetMs: block.day === null ? null : msToMidnight(this.#now()),
      };
    const [lifetime, dayTokens, dayRequests] = [left(blocks[0]), left(blocks[1]), left(blocks[2])];
    const tokens = lifetime && dayTokens
      ? (dayTokens.remaining < lifetime.remaining ? dayTokens : lifetime)
      : lifetime ?? dayTokens;
    return { tokens, requests: dayRequests };
  }

  /** Settles a reservation with real usage; written to KV with the next flush. */
  settle(reservation: Reservation, totalTokens: number): void {
    const tokens = safeAmount(totalTokens);
    for (const { block, need } of reservation.needs) {
      block.inFlight -= need;
      block.pending += block.dimension === "day_requests" ? 1 : tokens;
    }
    const { blocks, ids } = reservation.budgets;
    for (let i = 0; i < blocks.length; i++) {
      if (blocks[i] !== null) continue;
      const dimension = DIMENSIONS[i];
      const used = dimension === "day_requests" ? 1 : tokens;
      if (used === 0) continue;
      let entry = this.#untracked.get(ids[i]);
      if (entry === undefined) {
        const day = dimension === "tokens" ? null : reservation.day;
        entry = { keyId: reservation.keyId, dimension, day, amount: 0 };
        this.#untracked.set(ids[i], entry);
      }
      entry.amount += used;
    }
  }

  /** Writes pending usage, then renews, shrinks or returns leases as needed. */
  flush(): Promise<void> {
    this.#flushing ??= this.#tick().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /**
   * Drops this instance's leases of a key from memory after they were deleted in KV: `reset`
   * (usage reset: requests in flight still write their usage, which counts toward the fresh
   * quota) or `deleted` (the key is gone: nothing more is written).
   */
  forget(keyId: string, reason: "reset" | "deleted" = "deleted"): void {
    for (const block of this.#blocks.values()) {
      if (block.keyId !== keyId) continue;
      this.#keeper.release(block);
      if (reason === "deleted") {
        block.deleted = true;
        block.pending = 0;
      }
    }
    if (reason === "deleted") {
      for (const [id, entry] of this.#untracked) {
        if (entry.keyId === keyId) this.#untracked.delete(id);
      }
    }
  }

  /** Writes pending usage and returns every lease. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.flush();
    await Promise.all([...this.#blocks.values()].map((block) => block.lock));
    await this.#keeper.maintain(this.#blocks, this.#now(), true);
  }

  /** Takes `need` from the block, growing the lease first when it holds too little. */
  #take(block: Block, need: number): Promise<boolean> {
    return whenIdle(block, async () => {
      if (block.total - block.inFlight - block.pending < need) {
        if (!(await this.#keeper.grow(block, need))) return false;
      }
      block.inFlight += need;
      return true;
    });
  }

  #undo(reservation: Reservation): void {
    for (const { block, need } of reservation.needs) block.inFlight -= need;
  }

  async #tick(): Promise<void> {
    const now = this.#now();
    this.#housekeeping(now);
    await this.#writeUsage();
    await this.#keeper.maintain(this.#blocks, now, false).catch((err) => {
      this.#failed("quota lease renewal", err);
    });
  }

  /** Adds pending usage to `used`: sums only, so it never conflicts with other instances. */
  async #writeUsage(): Promise<void> {
    const items: UsageWrite[] = [];
    for (const block of this.#blocks.values()) {
      if (block.deleted) block.pending = 0;
      if (block.pending === 0) continue;
      const pending = block.pending;
      items.push(usageWrite(block, pending, () => {
        block.pending -= pending;
        block.usedSeen += pending;
        block.total = Math.max(0, block.total - pending);
      }));
    }
    for (const [id, entry] of this.#untracked) {
      const amount = entry.amount;
      items.push(usageWrite(entry, amount, () => {
        entry.amount -= amount;
        if (entry.amount === 0) this.#untracked.delete(id);
      }));
    }
    if (items.length === 0) return;
    const report = await commitWrites(this.#kv, items, {
      committed: (done) => done.forEach((item) => item.apply()),
      rejected: (item, error) => {
        item.apply();
        const { counter, amount } = item.sums[0];
        this.#metrics.inc(
          "modelgate_quota_usage_dropped_total",
          { dimension: item.dimension },
          amount,
        );
        this.#log.error("KV refused a usage counter; that usage is not counted", {
          counter: counter.id,
          amount,
          error: error.message,
        });
      },
    });
    if (report.error) this.#failed("quota usage flush", report.error);
  }

  #failed(what: string, error: Error): void {
    this.#failureGate.pass((failures) => {
      this.#log.error(`${what} failed; retrying with the next flush`, {
        error: error.message,
        failures,
      });
    });
  }
}

/** Usage of one budget to add to its `used` counter, and what to do once it is written. */
interface UsageWrite extends KvWrite {
  dimension: BudgetDimension;
  apply: () => void;
}

function usageWrite(budget: BudgetRef, amount: number, apply: () => void): UsageWrite {
  const counter = kvCounter(budgetKey(budget.keyId, budget.dimension, budget.day, "used"));
  return { dimension: budget.dimension, sets: [], sums: [{ counter, amount }], apply };
}
