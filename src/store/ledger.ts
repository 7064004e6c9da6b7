/**
 * Quotas and the usage ledger in Deno KV.
 *
 * Guarantee: a request is admitted only if `used + reserved + estimate` stays within the lifetime
 * quota and `tokens + reserved + estimate` within today's token budget (and `requests + 1` within
 * today's request budget), checked and reserved in one atomic KV operation. Concurrent requests,
 * on one instance or many, can therefore never together reserve more than the budget. A key can
 * end above its budget only by what requests used beyond their own reservation (a prompt longer
 * than estimated, or an answer longer than the cap when `max_tokens` was not given); the next
 * request is then refused.
 */
import { dailyKey, quotaKey, usageByKeyKey, usageKey } from "./kv_keys.ts";
import { type DailyCounters, DAY_MS, type QuotaCounters } from "./key_store.ts";
import type { KeyRecord, Page, UsageRecord } from "./model.ts";
import { timeOrderedId } from "./secrets.ts";
import { aggregateMutations } from "./aggregates.ts";

const MAX_ATTEMPTS = 20;

/** Why a reservation was refused. */
export type QuotaRefusal = "quota" | "daily_tokens" | "daily_requests";

/** Tokens held for one request until it settles. */
export interface Reservation {
  keyId: string;
  day: string;
  tokens: number;
}

/** Result of {@linkcode Ledger.reserve}. */
export type ReserveResult = { ok: true; reservation: Reservation } | {
  ok: false;
  reason: QuotaRefusal;
};

/** Options for {@linkcode Ledger}. */
export interface LedgerOptions {
  kv: Deno.Kv;
  retentionDays: number;
}

/** The UTC day of a time, as the daily counters name it. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Reserves and settles quota, and writes the ledger. */
export class Ledger {
  readonly kv: Deno.Kv;
  #retentionMs: number;
  #locks = new Map<string, Promise<unknown>>();

  constructor(options: LedgerOptions) {
    this.kv = options.kv;
    this.#retentionMs = options.retentionDays * DAY_MS;
  }

  /** Reserves `tokens` for a request of `key` at time `nowMs`. */
  reserve(key: KeyRecord, tokens: number, nowMs: number): Promise<ReserveResult> {
    const day = utcDay(nowMs);
    return this.#locked(key.id, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const [quota, daily] = await this.kv.getMany<[QuotaCounters, DailyCounters]>([
          quotaKey(key.id),
          dailyKey(key.id, day),
        ]);
        const q = quota.value ?? { used: 0, reserved: 0 };
        const d = daily.value ?? { tokens: 0, requests: 0, reserved: 0 };
        if (key.quota_tokens !== null && q.used + q.reserved + tokens > key.quota_tokens) {
          return { ok: false, reason: "quota" } as const;
        }
        if (key.daily_tokens !== null && d.tokens + d.reserved + tokens > key.daily_tokens) {
          return { ok: false, reason: "daily_tokens" } as const;
        }
        if (key.daily_requests !== null && d.requests + 1 > key.daily_requests) {
          return { ok: false, reason: "daily_requests" } as const;
        }
        const result = await this.kv.atomic().check(quota, daily)
          .set(quotaKey(key.id), { used: q.used, reserved: q.reserved + tokens })
          .set(dailyKey(key.id, day), {
            ...d,
            requests: d.requests + 1,
            reserved: d.reserved + tokens,
          }, {
            expireIn: DAY_MS * 2,
          })
          .commit();
        if (result.ok) return { ok: true, reservation: { keyId: key.id, day, tokens } } as const;
      }
      throw new Error("Quota reservation kept conflicting");
    });
  }

  /**
   * Settles a reservation with the real usage and writes the ledger record and its aggregates,
   * all in one atomic operation. The record is written once even when the counters conflict and
   * the operation is retried.
   */
  settle(reservation: Reservation, record: UsageRecord): Promise<void> {
    const seq = timeOrderedId(Date.parse(record.time));
    const aggregates = aggregateMutations(record);
    return this.#locked(reservation.keyId, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const [quota, daily] = await this.kv.getMany<[QuotaCounters, DailyCounters]>([
          quotaKey(reservation.keyId),
          dailyKey(reservation.keyId, reservation.day),
        ]);
        const q = quota.value ?? { used: 0, reserved: 0 };
        const d = daily.value ?? { tokens: 0, requests: 0, reserved: 0 };
        const op = this.kv.atomic().check(quota, daily)
          .set(quotaKey(reservation.keyId), {
            used: q.used + record.total_tokens,
            reserved: Math.max(0, q.reserved - reservation.tokens),
          })
          .set(dailyKey(reservation.keyId, reservation.day), {
            tokens: d.tokens + record.total_tokens,
            requests: d.requests,
            reserved: Math.max(0, d.reserved - reservation.tokens),
          }, { expireIn: DAY_MS * 2 })
          .set(usageKey(seq), record, { expireIn: this.#retentionMs })
          .set(usageByKeyKey(record.key_id, seq), seq, { expireIn: this.#retentionMs });
        for (const [key, value] of aggregates) op.sum(key, value);
        if ((await op.commit()).ok) return;
      }
      throw new Error("Quota settlement kept conflicting");
    });
  }

  /** The ledger, newest first; with `keyId`, only that key's records. */
  async listRequests(
    options: { cursor?: string; limit?: number; keyId?: string; model?: string },
  ): Promise<
    Page<UsageRecord>
  > {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
    const data: UsageRecord[] = [];
    let cursor: string | null = null;
    const listOptions = { cursor: options.cursor || undefined, reverse: true, batchSize: 100 };
    if (options.keyId) {
      const iterator = this.kv.list<string>(
        { prefix: ["usage_by_key", options.keyId] },
        listOptions,
      );
      for await (const entry of iterator) {
        const record = (await this.kv.get<UsageRecord>(usageKey(entry.value))).value;
        if (!record || (options.model && record.model !== options.model)) continue;
        data.push(record);
        if (data.length === limit) {
          cursor = iterator.cursor;
          break;
        }
      }
      return { data, next_cursor: cursor };
    }
    const iterator = this.kv.list<UsageRecord>({ prefix: ["usage"] }, listOptions);
    for await (const entry of iterator) {
      if (options.model && entry.value.model !== options.model) continue;
      data.push(entry.value);
      if (data.length === limit) {
        cursor = iterator.cursor;
        break;
      }
    }
    return { data, next_cursor: cursor };
  }

  /** Runs `fn` after every earlier call for the same key: one instance never fights itself. */
  #locked<T>(keyId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(keyId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.#locks.set(keyId, tail);
    tail.then(() => {
      if (this.#locks.get(keyId) === tail) this.#locks.delete(keyId);
    });
    return run;
  }
}
