/** Usage aggregates per key and per model, by hour and day, kept with atomic sums. */
import { type KvCounter, kvCounter, type KvSum } from "./kv_batch.ts";
import { aggregateKey } from "./kv_keys.ts";
import type { UsageRecord, UsageRow } from "./model.ts";

const METRICS = [
  "requests",
  "prompt_tokens",
  "completion_tokens",
  "errors",
  "cost_micros",
  "latency_ms",
] as const;

/** Bucket names: `2026-11-24T10` for hours, `2026-11-24` for days. */
export function bucketOf(period: "hour" | "day", ms: number): string {
  const iso = new Date(ms).toISOString();
  return period === "hour" ? iso.slice(0, 13) : iso.slice(0, 10);
}

const HOUR_MS = 3_600_000;

/** The counters of one subject (a key or a model) in one hour and its day, by metric. */
interface SubjectCounters {
  hour: KvCounter[];
  day: KvCounter[];
}

/** The counters of one hour, built as subjects first appear in it. */
interface HourCounters {
  hour: string;
  day: string;
  key: Map<string, SubjectCounters>;
  model: Map<string, SubjectCounters>;
}

/**
 * The aggregate counters usage records add to, built once per subject and hour and shared by
 * every record of that subject and hour: a record's sums then cost no keys, ids or sizes of their
 * own. Bounded: two hours at most (records arrive in about the order they end), and at most
 * `maxSubjects` per hour, beyond which the cache starts over.
 */
export class AggregateCounters {
  #hours = new Map<number, HourCounters>();
  #maxSubjects: number;

  constructor(maxSubjects = 1024) {
    this.#maxSubjects = maxSubjects;
  }

  /**
   * The sums one usage record adds to the aggregates, at `timeMs` (its `time`). Its counts must be
   * whole numbers KV can take (the ledger clamps them first).
   */
  sums(record: UsageRecord, timeMs: number): KvSum[] {
    const sums: KvSum[] = [];
    this.add(record, timeMs, (counter, amount) => sums.push({ counter, amount }));
    return sums;
  }

  /** Calls `add` with each counter the record adds to, and the amount ({@linkcode sums}). */
  add(record: UsageRecord, timeMs: number, add: (counter: KvCounter, amount: number) => void) {
    const hour = this.#hour(timeMs);
    const byKey = this.#subject(hour, "key", record.key_id);
    const byModel = this.#subject(hour, "model", record.model);
    // In the order of METRICS.
    const amounts = [
      1,
      record.prompt_tokens,
      record.completion_tokens,
      record.outcome === "completed" ? 0 : 1,
      Math.round(record.cost * 1_000_000),
      Math.round(record.latency_ms),
    ];
    for (let metric = 0; metric < amounts.length; metric++) {
      const amount = amounts[metric];
      if (!(amount > 0)) continue;
      add(byKey.hour[metric], amount);
      add(byKey.day[metric], amount);
      add(byModel.hour[metric], amount);
      add(byModel.day[metric], amount);
    }
  }

  #hour(timeMs: number): HourCounters {
    const index = Math.floor(timeMs / HOUR_MS);
    let hour = this.#hours.get(index);
    if (hour) return hour;
    const name = bucketOf("hour", timeMs);
    hour = { hour: name, day: name.slice(0, 10), key: new Map(), model: new Map() };
    if (this.#hours.size >= 2) this.#hours.delete(this.#hours.keys().next().value!);
    this.#hours.set(index, hour);
    return hour;
  }

  #subject(hour: HourCounters, dimension: "key" | "model", subject: string): SubjectCounters {
    const subjects = hour[dimension];
    let counters = subjects.get(subject);
    if (counters) return counters;
    if (subjects.size >= this.#maxSubjects) subjects.clear();
    const row = (period: "hour" | "day", bucket: string) =>
      METRICS.map((metric) => kvCounter(aggregateKey(period, dimension, subject, bucket, metric)));
    counters = { hour: row("hour", hour.hour), day: row("day", hour.day) };
    subjects.set(subject, counters);
    return counters;
  }
}

/** What {@linkcode queryUsage} reports. */
export interface UsageQuery {
  from: number;
  to: number;
  groupBy: "hour" | "day";
  by: "key" | "model";
  /** Only these subjects (key ids or model names); all when absent. */
  subjects?: string[];
}

/** Reads aggregate rows for a period; never scans raw records. */
export async function queryUsage(kv: Deno.Kv, query: UsageQuery): Promise<UsageRow[]> {
  const rows = new Map<string, UsageRow>();
  const first = bucketOf(query.groupBy, query.from);
  const last = bucketOf(query.groupBy, query.to);
  const prefixes = query.subjects?.map((s) => ["agg", query.groupBy, query.by, s]) ??
    [["agg", query.groupBy, query.by]];
  for (const prefix of prefixes) {
    for await (const entry of kv.list<Deno.KvU64>({ prefix })) {
      const [, , , subject, bucket, metric] = entry.key as string[];
      if (bucket < first || bucket > last) continue;
      const id = `${bucket}\u0000${subject}`;
      let row = rows.get(id);
      if (!row) {
        row = {
          bucket,
          subject,
          requests: 0,
          prompt_tokens: 0,
          completion_tokens: 0,
          total_tokens: 0,
          errors: 0,
          cost: 0,
          latency_ms_sum: 0,
        };
        rows.set(id, row);
      }
      const value = Number(entry.value.value);
      if (metric === "cost_micros") row.cost = value / 1_000_000;
      else if (metric === "latency_ms") row.latency_ms_sum = value;
      else (row as unknown as Record<string, number>)[metric] = value;
    }
  }
  for (const row of rows.values()) row.total_tokens = row.prompt_tokens + row.completion_tokens;
  return [...rows.values()].sort((a, b) =>
    a.bucket.localeCompare(b.bucket) || a.subject.localeCompare(b.subject)
  );
}
