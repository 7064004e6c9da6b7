/**
 * The usage ledger: one record per request plus hour/day aggregates per key and per model.
 * Records are queued and written every `flushMs` in atomic batches (aggregates merged first), so
 * the ledger costs no KV round trip per request. A graceful stop flushes the queue; a crash
 * (`kill -9`) loses at most the records of the last `flushMs` and of requests still in flight.
 */
import type { Logger } from "../log.ts";
import { aggregateMutations } from "./aggregates.ts";
import { usageByKeyKey, usageKey } from "./kv_keys.ts";
import type { Page, UsageRecord } from "./model.ts";
import { timeOrderedId } from "./secrets.ts";

const DAY_MS = 86_400_000;
/** Records per atomic operation: each is two sets; merged aggregates add at most a few hundred. */
const BATCH = 100;

/** Options for {@linkcode Ledger}. */
export interface LedgerOptions {
  kv: Deno.Kv;
  retentionDays: number;
  log: Logger;
  flushMs?: number;
}

/** Writes and reads the per-request ledger. */
export class Ledger {
  readonly kv: Deno.Kv;
  #retentionMs: number;
  #log: Logger;
  #queue: { seq: string; record: UsageRecord }[] = [];
  #timer: ReturnType<typeof setInterval>;
  #flushing: Promise<void> | null = null;

  constructor(options: LedgerOptions) {
    this.kv = options.kv;
    this.#retentionMs = options.retentionDays * DAY_MS;
    this.#log = options.log;
    this.#timer = setInterval(() => this.flush().catch(() => {}), options.flushMs ?? 100);
  }

  /** Queues one record for the next flush. */
  record(record: UsageRecord): void {
    this.#queue.push({ seq: timeOrderedId(Date.parse(record.time)), record });
  }

  /** Writes every queued record (the caller may await it, e.g. before shutdown). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushAll().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Flushes and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    if (this.#queue.length > 0) await this.#flushAll();
  }

  async #flushAll(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, BATCH);
      const sums = new Map<string, { key: Deno.KvKey; amount: bigint }>();
      const op = this.kv.atomic();
      for (const { seq, record } of batch) {
        op.set(usageKey(seq), record, { expireIn: this.#retentionMs });
        op.set(usageByKeyKey(record.key_id, seq), seq, { expireIn: this.#retentionMs });
        for (const [key, amount] of aggregateMutations(record)) {
          const id = JSON.stringify(key);
          const entry = sums.get(id);
          if (entry) entry.amount += amount;
          else sums.set(id, { key, amount });
        }
      }
      for (const { key, amount } of sums.values()) op.sum(key, amount);
      try {
        await op.commit();
        this.#queue.splice(0, batch.length);
      } catch (err) {
        this.#log.error("ledger flush failed; retrying with the next flush", {
          records: batch.length,
          error: (err as Error).message,
        });
        return;
      }
    }
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
}
