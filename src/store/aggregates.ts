/** Usage aggregates per key and per model, by hour and day, kept with atomic sums. */
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
type Metric = typeof METRICS[number];

/** Bucket names: `2026-11-24T10` for hours, `2026-11-24` for days. */
export function bucketOf(period: "hour" | "day", ms: number): string {
  const iso = new Date(ms).toISOString();
  return period === "hour" ? iso.slice(0, 13) : iso.slice(0, 10);
}

/** The `.sum()` mutations one usage record adds to the aggregates. */
export function aggregateMutations(record: UsageRecord): [Deno.KvKey, bigint][] {
  const time = Date.parse(record.time);
  const values: Record<Metric, number> = {
    requests: 1,
    prompt_tokens: record.prompt_tokens,
    completion_tokens: record.completion_tokens,
    errors: record.outcome === "completed" ? 0 : 1,
    cost_micros: Math.round(record.cost * 1_000_000),
    latency_ms: Math.round(record.latency_ms),
  };
  const out: [Deno.KvKey, bigint][] = [];
  for (const period of ["hour", "day"] as const) {
    const bucket = bucketOf(period, time);
    for (const [dimension, subject] of [["key", record.key_id], ["model", record.model]] as const) {
      for (const metric of METRICS) {
        if (values[metric] <= 0) continue;
        out.push([
          aggregateKey(period, dimension, subject, bucket, metric),
          BigInt(values[metric]),
        ]);
      }
    }
  }
  return out;
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
