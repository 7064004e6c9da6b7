/**
 * The usage ledger: one record per request plus hour/day aggregates per key and per model.
 * Records are queued and written every `flushMs`: each key's records of a flush as one KV value (a
 * block) with one by-key pointer, in atomic batches (aggregates merged, each batch within KV's
 * limits), so the ledger costs no KV round trip per request and few KV mutations. The queue is
 * bounded: when KV cannot keep up, new records are dropped and counted rather than memory growing
 * without end. A record KV refuses on its own is dropped and logged; it never holds the others
 * back. A graceful stop flushes the queue; a crash (`kill -9`) loses at most the records of the
 * last `flushMs` and of requests still in flight. Values written before blocks (one record each)
 * are read alike.
 */
import { LogGate } from "../log_gate.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { AggregateCounters } from "./aggregates.ts";
import { isSafeAmount, safeAmount } from "./amount.ts";
import { type KvCounter, type KvSum, type KvWrite, tooLarge, valueBytes } from "./kv_batch.ts";
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

/**
 * The records of one key from one flush, written as one KV value (newest last) with one by-key
 * pointer, plus the aggregate sums they add. Two mutations per key and flush instead of two per
 * request: KV's cost per mutation (serialising, the op, a SQLite row) dwarfs a record's own.
 */
interface Block extends KvWrite {
  records: UsageRecord[];
}

/** Estimated size at which a block is closed (KV takes values up to 64 KiB; the estimate is high). */
const BLOCK_BYTES = 32 * 1024;
/** Records in one block at most. */
const BLOCK_RECORDS = 256;
/** What valueBytes() counts for an array besides its items. */
const ARRAY_BYTES = valueBytes([]);

/** The records of a stored ledger value: a block, or one record as versions before blocks wrote. */
function recordsOf(value: UsageRecord[] | UsageRecord): UsageRecord[] {
  return Array.isArray(value) ? value : [value];
}

function recordsIn(blocks: Block[]): number {
  let count = 0;
  for (const block of blocks) count += block.records.length;
  return count;
}

/** `next_cursor` of {@linkcode Ledger.listRequests}: records of block `seq` already listed, and `seq`. */
const CURSOR = /^(\d{1,6})\.([0-9A-Za-z_-]{1,64})$/;

/** Writes and reads the per-request ledger. */
export class Ledger {
  readonly kv: Deno.Kv;
  #retentionMs: number;
  #log: Logger;
  #metrics: Metrics;
  #maxQueue: number;
  #closeTimeoutMs: number;
  /** Records not yet in a block. */
  #queue: UsageRecord[] = [];
  /** Blocks a flush could not write (KV away), to try again first; and how many records they hold. */
  #retry: Block[] = [];
  #retrying = 0;
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
    return this.#queue.length + this.#retrying + this.#writing;
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
    this.#queue.push(record);
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
    const unwritten = this.#queue.length + this.#retrying;
    if (unwritten > 0) {
      this.#log.error("ledger closed with records it could not write", { records: unwritten });
      this.#drop("shutdown", unwritten);
      this.#queue = [];
      this.#retry = [];
      this.#retrying = 0;
    }
  }

  async #flushOnce(): Promise<void> {
    if (this.#queue.length === 0 && this.#retry.length === 0) return;
    let batch = this.#retry.concat(this.#blocks(this.#queue));
    this.#queue = [];
    this.#retry = [];
    this.#retrying = 0;
    this.#writing = recordsIn(batch);
    try {
      while (batch.length > 0) {
        // The records of a block KV refused whole, each in a block of its own, written next: one
        // bad record must not take the others of its key with it.
        const split: Block[] = [];
        const report = await commitWrites(this.kv, batch, {
          committed: (blocks) => {
            this.#writing -= recordsIn(blocks);
          },
          rejected: (block, error, rejection) => {
            if (rejection.written === "none" && block.records.length > 1) {
              for (const record of block.records) this.#seal([record], split);
              return;
            }
            this.#writing -= block.records.length;
            // Written but for counters that are not numbers: only the records adding to them.
            const lost = rejection.written === "all_but"
              ? block.records.filter((record) => this.#addsTo(record, rejection.counters))
              : block.records;
            if (lost.length > 0) this.#reject(lost, error.message);
          },
        });
        if (report.remaining.length > 0) {
          // Unwritten blocks are tried first at the next flush, before records queued meanwhile.
          this.#retry = report.remaining.concat(split);
          this.#retrying = recordsIn(this.#retry);
          if (report.error) {
            this.#log.error("ledger flush failed; retrying with the next flush", {
              records: this.#retrying,
              error: report.error.message,
            });
          }
          return;
        }
        batch = split;
      }
    } finally {
      this.#writing = 0;
    }
  }

  /** The records in blocks: per key, in order, each block within KV's limits. */
  #blocks(records: UsageRecord[]): Block[] {
    const byKey = new Map<string, UsageRecord[]>();
    for (const record of records) {
      const list = byKey.get(record.key_id);
      if (list) list.push(record);
      else byKey.set(record.key_id, [record]);
    }
    // Each part with its size as valueBytes() measures an array of them.
    const parts: { records: UsageRecord[]; bytes: number }[] = [];
    for (const list of byKey.values()) {
      let part: UsageRecord[] = [];
      let bytes = ARRAY_BYTES;
      for (const raw of list) {
        const record = this.#clean(raw);
        const size = valueBytes(record);
        if (part.length > 0 && (bytes + size > BLOCK_BYTES || part.length === BLOCK_RECORDS)) {
          parts.push({ records: part, bytes });
          part = [];
          bytes = ARRAY_BYTES;
        }
        part.push(record);
        bytes += size;
      }
      if (part.length > 0) parts.push({ records: part, bytes });
    }
    // Sealed in time order, so their time-ordered ids are made in order (ISO times sort as text).
    const first = (part: { records: UsageRecord[] }) => part.records[0].time;
    parts.sort((a, b) => first(a) < first(b) ? -1 : first(a) > first(b) ? 1 : 0);
    const blocks: Block[] = [];
    for (const part of parts) this.#seal(part.records, blocks, part.bytes);
    return blocks;
  }

  /**
   * Adds the block of `records` (one key's, oldest first) to `out`. One KV could never take is
   * split into blocks of one record; a record KV could never take alone is given up.
   */
  #seal(records: UsageRecord[], out: Block[], bytes?: number): void {
    let block: Block;
    let reason: string | null;
    try {
      block = this.#block(records, bytes);
      reason = tooLarge(block);
    } catch (err) {
      reason = (err as Error).message;
    }
    if (reason === null) out.push(block!);
    else if (records.length === 1) this.#reject(records, reason);
    else for (const record of records) this.#seal([record], out);
  }

  /** The block of `records`; `bytes` is valueBytes(records) when known. */
  #block(records: UsageRecord[], bytes?: number): Block {
    const first = records[0];
    const seq = timeOrderedId(Date.parse(first.time));
    // The block's sums to each counter merged (a new entry where a number would lose precision):
    // 24 per block instead of 24 per record, and tooLarge() counts each sum as a mutation.
    const sums: KvSum[] = [];
    const totals = new Map<KvCounter, KvSum>();
    const add = (counter: KvCounter, amount: number) => {
      const total = totals.get(counter);
      if (total && total.amount + amount <= Number.MAX_SAFE_INTEGER) {
        total.amount += amount;
        return;
      }
      const sum = { counter, amount };
      totals.set(counter, sum);
      sums.push(sum);
    };
    for (const record of records) this.#aggregates.add(record, Date.parse(record.time), add);
    return {
      records,
      sets: [
        { key: usageKey(seq), value: records, expireIn: this.#retentionMs, bytes },
        { key: usageByKeyKey(first.key_id, seq), value: seq, expireIn: this.#retentionMs },
      ],
      sums,
    };
  }

  /** Whether `record` adds to one of `counters` (by id). */
  #addsTo(record: UsageRecord, counters: ReadonlySet<string>): boolean {
    const sums = this.#aggregates.sums(record, Date.parse(record.time));
    return sums.some((sum) => counters.has(sum.counter.id));
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

  /** `records` (of one key) that KV refused, or refused a counter of: that part is not written. */
  #reject(records: UsageRecord[], reason: string): void {
    this.#drop("rejected", records.length);
    this.#log.error("KV refused a usage record or one of its counters; that part is not written", {
      request_id: records[0].request_id,
      key_id: records[0].key_id,
      ...(records.length > 1 ? { records: records.length } : {}),
      error: reason,
    });
  }

  #drop(reason: "queue_full" | "rejected" | "shutdown", count: number): void {
    this.#metrics.inc(DROPPED, { reason }, count);
  }

  /**
   * The ledger, newest first (records of one flush are listed by key, so their order across keys
   * is that of the flush interval); with `keyId`, only that key's records. A cursor this did not
   * make throws a TypeError naming it.
   */
  async listRequests(
    options: { cursor?: string; limit?: number; keyId?: string; model?: string },
  ): Promise<Page<UsageRecord>> {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
    let from: { seq: string; skip: number } | null = null;
    if (options.cursor) {
      const match = CURSOR.exec(options.cursor);
      if (!match) throw new TypeError("invalid cursor");
      from = { skip: Number(match[1]), seq: match[2] };
    }
    const { keyId, model } = options;
    const data: UsageRecord[] = [];
    for await (const { seq, records } of this.#newestFirst(keyId, from)) {
      for (let i = seq === from?.seq ? from.skip : 0; i < records.length; i++) {
        const record = records[records.length - 1 - i];
        if ((keyId && record.key_id !== keyId) || (model && record.model !== model)) continue;
        data.push(record);
        if (data.length === limit) return { data, next_cursor: `${i + 1}.${seq}` };
      }
    }
    return { data, next_cursor: null };
  }

  /** Stored values newest first: the block `from` names, then every older one. */
  async *#newestFirst(
    keyId: string | undefined,
    from: { seq: string } | null,
  ): AsyncGenerator<{ seq: string; records: UsageRecord[] }> {
    type Stored = UsageRecord[] | UsageRecord;
    if (from) {
      const value = (await this.kv.get<Stored>(usageKey(from.seq))).value;
      if (value) yield { seq: from.seq, records: recordsOf(value) };
    }
    const options = { reverse: true, batchSize: 100 };
    if (keyId) {
      const prefix = ["usage_by_key", keyId];
      const selector = from ? { prefix, end: usageByKeyKey(keyId, from.seq) } : { prefix };
      for await (const entry of this.kv.list<string>(selector, options)) {
        const value = (await this.kv.get<Stored>(usageKey(entry.value))).value;
        if (value) yield { seq: entry.value, records: recordsOf(value) };
      }
      return;
    }
    const prefix = ["usage"];
    const selector = from ? { prefix, end: usageKey(from.seq) } : { prefix };
    for await (const entry of this.kv.list<Stored>(selector, options)) {
      yield { seq: entry.key[1] as string, records: recordsOf(entry.value) };
    }
  }
}
