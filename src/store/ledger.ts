/**
 * The usage ledger: one record per request plus hour/day aggregates per key and per model.
 * Records are queued and written every `flushMs` in atomic batches (aggregates merged, each batch
 * within KV's limits), so the ledger costs no KV round trip per request. The queue is bounded:
 * when KV cannot keep up, new records are dropped and counted rather than memory growing without
 * end. A record KV refuses on its own is dropped and logged; it never holds the others back.
 * A graceful stop flushes the queue; a crash (`kill -9`) loses at most the records of the last
 * `flushMs` and of requests still in flight.
 */
import { LogGate } from "../log_gate.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { AggregateCounters } from "./aggregates.ts";
import { isSafeAmount, safeAmount } from "./amount.ts";
import { type KvWrite, tooLarge } from "./kv_batch.ts";
import { commitWrites } from "./kv_commit.ts";
import { usageByKeyKey, usageKey } from "./kv_keys.ts";
import type { Page, UsageRecord } from "./model.ts";
import { timeOrderedId } from "./secrets.ts";

const DAY_MS = 86_400_000;
const DROPPED = "modelgate_ledger_dropped_total";

/** Options for {@linkcode Ledger}. */
export interface LedgerOptions {
  kv: Deno.Kv;
  retentionDays: number;
  log: Logger;
  metrics?: Metrics;
  flushMs?: number;
  /** Records waiting to be written at most; more are dropped (default 100,000). */
  maxQueue?: number;
  /** False: no timer, the owner calls `flush()` (tests). */
  autoFlush?: boolean;
  /** How long `close()` keeps trying to write what is queued (default 10 s). */
  closeTimeoutMs?: number;
  /** Clock for log intervals. */
  now?: () => number;
}

/** A queued record and, once built (at its first flush), what writing it takes. */
interface Queued extends KvWrite {
  record: UsageRecord;
  /** `record.time` in ms since the epoch. */
  timeMs: number;
  seq: string;
  built: boolean;
}

/** What a queued record writes until it is built (shared: never written to). */
const NOTHING: never[] = [];

/** Writes and reads the per-request ledger. */
export class Ledger {
  readonly kv: Deno.Kv;
  #retentionMs: number;
  #log: Logger;
  #metrics: Metrics;
  #maxQueue: number;
  #closeTimeoutMs: number;
  #queue: Queued[] = [];
  /** Records taken by the flush in progress (they count against the bound). */
  #writing = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  #flushing: Promise<void> | null = null;
  #fullGate: LogGate;
  #invalidGate: LogGate;
  #aggregates = new AggregateCounters();

  constructor(options: LedgerOptions) {
    this.kv = options.kv;
    this.#retentionMs = options.retentionDays * DAY_MS;
    this.#log = options.log;
    this.#metrics = options.metrics ?? new Metrics();
    this.#maxQueue = options.maxQueue ?? 100_000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.#fullGate = new LogGate(60_000, options.now);
    this.#invalidGate = new LogGate(60_000, options.now);
    this.#metrics.describe(DROPPED, "Ledger records given up, by reason");
    this.#metrics.gauge(
      "modelgate_ledger_queued",
      "Ledger records waiting to be written",
      () => this.queued,
    );
    if (options.autoFlush !== false) {
      this.#timer = setInterval(() => this.flush().catch(() => {}), options.flushMs ?? 100);
    }
  }

  /** Records waiting to be written. */
  get queued(): number {
    return this.#queue.length + this.#writing;
  }

  /** Queues one record for the next flush (dropped and counted when the queue is full). */
  record(record: UsageRecord): void {
    if (this.queued >= this.#maxQueue) {
      this.#drop("queue_full", 1);
      this.#fullGate.pass((dropped) => {
        this.#log.error("ledger queue is full; usage records are being dropped", {
          max_queue: this.#maxQueue,
          dropped,
        });
      });
      return;
    }
    const timeMs = Date.parse(record.time);
    const seq = timeOrderedId(timeMs);
    this.#queue.push({ record, timeMs, seq, built: false, sets: NOTHING, sums: NOTHING });
  }

  /** Writes every queued record KV accepts now (the caller may await it, e.g. before a report). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Stops the timer and writes what is queued, trying for at most `closeTimeoutMs`. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    const deadline = Date.now() + this.#closeTimeoutMs;
    await this.flush();
    while (this.queued > 0 && Date.now() < deadline) {
      const before = this.queued;
      await this.flush();
      if (this.queued >= before) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.#flushing;
    if (this.#queue.length > 0) {
      this.#log.error("ledger closed with records it could not write", {
        records: this.#queue.length,
      });
      this.#drop("shutdown", this.#queue.length);
      this.#queue = [];
    }
  }

  async #flushOnce(): Promise<void> {
    if (this.#queue.length === 0) return;
    const batch = this.#queue.filter((item) => item.built || this.#build(item));
    this.#queue = [];
    this.#writing = batch.length;
    try {
      const report = await commitWrites(this.kv, batch, {
        committed: (items) => {
          this.#writing -= items.length;
        },
        rejected: (item, error) => {
          this.#writing--;
          this.#reject(item.record, error.message);
        },
      });
      // Unwritten records go back in front of those queued meanwhile, in order.
      this.#queue = report.remaining.concat(this.#queue);
      if (report.error) {
        this.#log.error("ledger flush failed; retrying with the next flush", {
          records: report.remaining.length,
          error: report.error.message,
        });
      }
    } finally {
      this.#writing = 0;
    }
  }

  /** Fills in what writing `item` takes; false (and the record dropped) if KV could never take it. */
  #build(item: Queued): boolean {
    item.record = this.#clean(item.record);
    const { record, seq } = item;
    try {
      item.sets = [
        { key: usageKey(seq), value: record, expireIn: this.#retentionMs },
        { key: usageByKeyKey(record.key_id, seq), value: seq, expireIn: this.#retentionMs },
      ];
      item.sums = this.#aggregates.sums(record, item.timeMs);
    } catch (err) {
      this.#reject(record, (err as Error).message);
      return false;
    }
    const reason = tooLarge(item);
    if (reason) {
      this.#reject(record, reason);
      return false;
    }
    item.built = true;
    return true;
  }

  /** The record with every count KV sums as a whole number it can take. */
  #clean(record: UsageRecord): UsageRecord {
    const costOk = Number.isFinite(record.cost) && record.cost >= 0 &&
      record.cost * 1_000_000 <= Number.MAX_SAFE_INTEGER;
    if (
      costOk && isSafeAmount(record.prompt_tokens) && isSafeAmount(record.completion_tokens) &&
      isSafeAmount(record.total_tokens) && isSafeAmount(record.latency_ms)
    ) return record;
    this.#invalidGate.pass((records) => {
      this.#log.warn("usage record with invalid counts; clamped before writing", {
        request_id: record.request_id,
        key_id: record.key_id,
        records,
      });
    });
    return {
      ...record,
      prompt_tokens: safeAmount(record.prompt_tokens),
      completion_tokens: safeAmount(record.completion_tokens),
      total_tokens: safeAmount(record.total_tokens),
      latency_ms: safeAmount(record.latency_ms),
      cost: costOk ? record.cost : 0,
    };
  }

  #reject(record: UsageRecord, reason: string): void {
    this.#drop("rejected", 1);
    this.#log.error("KV refused a usage record or one of its counters; that part is not written", {
      request_id: record.request_id,
      key_id: record.key_id,
      error: reason,
    });
  }

  #drop(reason: "queue_full" | "rejected" | "shutdown", count: number): void {
    this.#metrics.inc(DROPPED, { reason }, count);
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
