/**
 * Quota reservations without a KV round trip per request.
 *
 * Each instance reserves budget from KV in blocks: one atomic operation checks that
 * `used + reserved + block` fits the key's budget and adds the block to `reserved`. Requests then
 * reserve from the instance's block in memory. Because every block was checked against the budget
 * when it was taken, all instances together can never reserve more than the budget; a key goes
 * over only by what requests used beyond their own reservation. Usage is written back in batches
 * (used grows, the consumed part of the block is released) every `flushMs`; blocks idle for
 * `idleMs` are returned. A block is at most 5% of the budget (at least one request's need), so a
 * key near its limit is served request by request, exactly.
 */
import type { Logger } from "../log.ts";
import { readBudget } from "./budget.ts";
import { type BudgetDimension, budgetKey } from "./kv_keys.ts";
import type { KeyRecord } from "./model.ts";

/** Why a reservation was refused. */
export type QuotaRefusal = "quota" | "daily_tokens" | "daily_requests";

/** What one request holds until it settles. */
export interface Reservation {
  keyId: string;
  day: string;
  needs: { block: Block; need: number; unit: "tokens" | "requests" }[];
}

/** Result of {@linkcode QuotaBroker.reserve}. */
export type ReserveResult = { ok: true; reservation: Reservation } | {
  ok: false;
  reason: QuotaRefusal;
};

interface Block {
  id: string;
  keyId: string;
  dimension: BudgetDimension;
  day: string | null;
  limit: number;
  /** Reserved in KV by this instance and not yet released. */
  total: number;
  inFlight: number;
  /** Consumed since the last flush. */
  pending: number;
  lastUsed: number;
  lock: Promise<unknown>;
}

/** Options for {@linkcode QuotaBroker}. */
export interface QuotaBrokerOptions {
  kv: Deno.Kv;
  now: () => number;
  log: Logger;
  flushMs?: number;
  idleMs?: number;
}

const MAX_ATTEMPTS = 20;

/** The UTC day of a time, as the daily counters name it. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Reserves quota in memory from blocks taken atomically from KV, and writes usage back. */
export class QuotaBroker {
  #kv: Deno.Kv;
  #now: () => number;
  #log: Logger;
  #idleMs: number;
  #blocks = new Map<string, Block>();
  /** Usage of keys without a budget in a dimension: only `used` grows. */
  #untracked = new Map<
    string,
    { keyId: string; dimension: BudgetDimension; day: string | null; amount: number }
  >();
  #timer: ReturnType<typeof setInterval>;
  #flushing: Promise<void> | null = null;
  #sweptDay = "";

  constructor(options: QuotaBrokerOptions) {
    this.#kv = options.kv;
    this.#now = options.now;
    this.#log = options.log;
    this.#idleMs = options.idleMs ?? 1000;
    this.#timer = setInterval(() => this.flush().catch(() => {}), options.flushMs ?? 100);
  }

  /** Reserves `tokens` (and one request) for a request of `key`. */
  async reserve(key: KeyRecord, tokens: number): Promise<ReserveResult> {
    const now = this.#now();
    const day = utcDay(now);
    const wanted: [BudgetDimension, string | null, number | null, number, QuotaRefusal][] = [
      ["tokens", null, key.quota_tokens, tokens, "quota"],
      ["day_tokens", day, key.daily_tokens, tokens, "daily_tokens"],
      ["day_requests", day, key.daily_requests, 1, "daily_requests"],
    ];
    const reservation: Reservation = { keyId: key.id, day, needs: [] };
    for (const [dimension, dimensionDay, limit, need, reason] of wanted) {
      if (limit === null) continue;
      const block = this.#block(key.id, dimension, dimensionDay, limit, now);
      if (!(await this.#take(block, need))) {
        this.#undo(reservation);
        return { ok: false, reason };
      }
      reservation.needs.push({
        block,
        need,
        unit: dimension === "day_requests" ? "requests" : "tokens",
      });
    }
    return { ok: true, reservation };
  }

  /** Settles a reservation with real usage; written to KV with the next flush. */
  settle(reservation: Reservation, totalTokens: number): void {
    const used: Record<BudgetDimension, number> = {
      tokens: totalTokens,
      day_tokens: totalTokens,
      day_requests: 1,
    };
    const covered = new Set<BudgetDimension>();
    for (const { block, need } of reservation.needs) {
      block.inFlight -= need;
      block.pending += used[block.dimension];
      covered.add(block.dimension);
    }
    for (const dimension of ["tokens", "day_tokens", "day_requests"] as const) {
      if (covered.has(dimension)) continue;
      const day = dimension === "tokens" ? null : reservation.day;
      const id = `${reservation.keyId}|${dimension}|${day}`;
      const entry = this.#untracked.get(id) ??
        { keyId: reservation.keyId, dimension, day, amount: 0 };
      entry.amount += used[dimension];
      this.#untracked.set(id, entry);
    }
  }

  /** Writes pending usage and returns idle blocks, in one atomic operation. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Forgets this instance's blocks of a key (after its usage was reset or it was deleted). */
  forget(keyId: string): void {
    for (const [id, block] of this.#blocks) if (block.keyId === keyId) this.#blocks.delete(id);
  }

  /** Flushes everything and returns every block. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    for (const block of [...this.#blocks.values()]) {
      await block.lock;
      await this.#returnIdle(block, this.#now());
    }
  }

  #block(
    keyId: string,
    dimension: BudgetDimension,
    day: string | null,
    limit: number,
    now: number,
  ): Block {
    const id = `${keyId}|${dimension}|${day}`;
    let block = this.#blocks.get(id);
    if (!block) {
      block = {
        id,
        keyId,
        dimension,
        day,
        limit,
        total: 0,
        inFlight: 0,
        pending: 0,
        lastUsed: now,
        lock: Promise.resolve(),
      };
      this.#blocks.set(id, block);
    }
    block.limit = limit;
    block.lastUsed = now;
    return block;
  }

  /** Takes `need` from the block, leasing more from KV first when it has too little. */
  #take(block: Block, need: number): Promise<boolean> {
    const run = block.lock.then(async () => {
      if (block.total - block.inFlight - block.pending < need) {
        const leased = await this.#lease(
          block,
          need - (block.total - block.inFlight - block.pending),
        );
        if (!leased) return false;
      }
      block.inFlight += need;
      return true;
    });
    block.lock = run.catch(() => {});
    return run;
  }

  async #lease(block: Block, short: number): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const state = await readBudget(this.#kv, block.keyId, block.dimension, block.day);
      const available = block.limit - state.used - state.reserved;
      if (available < short) return false;
      const size = Math.min(available, Math.max(short, Math.ceil(block.limit / 20)));
      const op = this.#kv.atomic().check(...state.entries)
        .sum(budgetKey(block.keyId, block.dimension, block.day, "reserved_added"), BigInt(size));
      if ((await op.commit()).ok) {
        block.total += size;
        return true;
      }
    }
    throw new Error("Quota reservation kept conflicting");
  }

  #undo(reservation: Reservation): void {
    for (const { block, need } of reservation.needs) block.inFlight -= need;
  }

  /**
   * Gives an idle block's unused tokens back to KV. The block itself stays (a reservation may
   * already hold it) unless it belongs to a past day, which no new request can use.
   */
  async #returnIdle(block: Block, now: number): Promise<void> {
    if (block.inFlight > 0 || block.pending > 0) return;
    if (block.total > 0) {
      await this.#kv.atomic()
        .sum(
          budgetKey(block.keyId, block.dimension, block.day, "reserved_released"),
          BigInt(block.total),
        )
        .commit();
      block.total = 0;
    }
    if (block.day !== null && block.day < utcDay(now)) this.#blocks.delete(block.id);
  }

  /**
   * Daily counters are KvU64 sums, which cannot carry an expiry; once a day each instance deletes
   * those of days before yesterday (idempotent when several instances do it).
   */
  async #sweepOldDays(today: string): Promise<void> {
    const yesterday = utcDay(Date.parse(`${today}T00:00:00Z`) - 86_400_000);
    let op = this.#kv.atomic();
    let count = 0;
    for await (const entry of this.#kv.list({ prefix: ["quota_day"] })) {
      if ((entry.key[2] as string) >= yesterday) continue;
      op.delete(entry.key);
      if (++count % 500 === 0) {
        await op.commit();
        op = this.#kv.atomic();
      }
    }
    if (count % 500 !== 0) await op.commit();
  }

  async #flushOnce(): Promise<void> {
    const now = this.#now();
    const today = utcDay(now);
    if (today !== this.#sweptDay) {
      this.#sweptDay = today;
      this.#sweepOldDays(today).catch((err) => {
        this.#log.warn("sweeping old daily counters failed", { error: (err as Error).message });
      });
    }
    const items: FlushItem[] = [];
    for (const block of this.#blocks.values()) {
      const idle = block.inFlight === 0 && block.pending === 0 &&
        now - block.lastUsed >= this.#idleMs;
      if (idle && (block.total > 0 || (block.day !== null && block.day < utcDay(now)))) {
        // Returned under the block's lock, so no reservation can be taken from it meanwhile.
        block.lock = block.lock.then(() => this.#returnIdle(block, now)).catch(() => {});
        continue;
      }
      if (block.pending === 0) continue;
      const pending = block.pending;
      const release = Math.min(pending, block.total);
      items.push({
        sums: [
          [budgetKey(block.keyId, block.dimension, block.day, "used"), pending],
          [budgetKey(block.keyId, block.dimension, block.day, "reserved_released"), release],
        ],
        apply: () => {
          block.pending -= pending;
          block.total -= release;
        },
      });
    }
    for (const [id, entry] of this.#untracked) {
      const amount = entry.amount;
      items.push({
        sums: [[budgetKey(entry.keyId, entry.dimension, entry.day, "used"), amount]],
        apply: () => {
          entry.amount -= amount;
          if (entry.amount === 0) this.#untracked.delete(id);
        },
      });
    }
    try {
      await commitItems(this.#kv, items);
    } catch (err) {
      this.#log.error("quota flush failed; retrying with the next flush", {
        error: (err as Error).message,
      });
    }
  }
}

/** Counter additions and the local bookkeeping to do once they are committed. */
interface FlushItem {
  sums: [Deno.KvKey, number][];
  apply: () => void;
}

/**
 * Commits items in atomic operations of at most 500 mutations, applying each chunk's bookkeeping
 * right after its commit: a failure part-way leaves only uncommitted items for the next flush,
 * so nothing is counted twice.
 */
async function commitItems(kv: Deno.Kv, items: FlushItem[]): Promise<void> {
  let chunk: FlushItem[] = [];
  let mutations = 0;
  const commit = async () => {
    const op = kv.atomic();
    for (const item of chunk) {
      for (const [key, amount] of item.sums) if (amount > 0) op.sum(key, BigInt(amount));
    }
    await op.commit();
    for (const item of chunk) item.apply();
    chunk = [];
    mutations = 0;
  };
  for (const item of items) {
    if (mutations + item.sums.length > 500) await commit();
    chunk.push(item);
    mutations += item.sums.length;
  }
  if (chunk.length > 0) await commit();
}
