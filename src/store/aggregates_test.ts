import { assert, assertEquals } from "../../tests/assert.ts";
import { AggregateCounters } from "./aggregates.ts";
import { aggregateKey } from "./kv_keys.ts";
import type { UsageRecord } from "./model.ts";
import { usageRecord } from "../../tests/fixtures/usage_record.ts";

const HOUR = Date.parse("2026-11-24T10:00:00Z");
/** The sums of one record as [key, amount] pairs, the way they were built before any cache. */
function expectedSums(record: UsageRecord, hour: string): [Deno.KvKey, number][] {
  const amounts: [string, number][] = [
    ["requests", 1],
    ["prompt_tokens", record.prompt_tokens],
    ["completion_tokens", record.completion_tokens],
    ["errors", record.outcome === "completed" ? 0 : 1],
    ["cost_micros", Math.round(record.cost * 1_000_000)],
    ["latency_ms", Math.round(record.latency_ms)],
  ];
  const out: [Deno.KvKey, number][] = [];
  for (const [metric, amount] of amounts) {
    if (amount <= 0) continue;
    out.push(
      [aggregateKey("hour", "key", record.key_id, hour, metric), amount],
      [aggregateKey("day", "key", record.key_id, hour.slice(0, 10), metric), amount],
      [aggregateKey("hour", "model", record.model, hour, metric), amount],
      [aggregateKey("day", "model", record.model, hour.slice(0, 10), metric), amount],
    );
  }
  return out;
}

Deno.test("AggregateCounters.sums() names each record's hour and day counters, also once its bounded cache starts over", () => {
  const counters = new AggregateCounters(4);
  for (let round = 0; round < 3; round++) {
    for (const hourOffset of [0, 1, 0, 2, 2, 0]) {
      for (let k = 0; k < 10; k++) {
        const time = HOUR + hourOffset * 3_600_000 + k * 1000;
        const record = usageRecord(`key_${k}`, k, {
          model: `model_${k % 3}`,
          outcome: k % 4 ? "completed" : "upstream_error",
          completion_tokens: k % 2 ? 5 : 0,
        });
        const sums = counters.sums(record, time);
        const hour = new Date(time).toISOString().slice(0, 13);
        assertEquals(sums.map((s) => [s.counter.key, s.amount]), expectedSums(record, hour));
        for (const sum of sums) assertEquals(sum.counter.id, JSON.stringify(sum.counter.key));
      }
    }
  }
});

Deno.test("AggregateCounters.sums() shares one counter between records of one subject and hour", () => {
  const counters = new AggregateCounters();
  const first = counters.sums(usageRecord("key_a", 0), HOUR + 1);
  const second = counters.sums(usageRecord("key_a", 0), HOUR + 2_000_000);
  const otherHour = counters.sums(usageRecord("key_a", 0), HOUR + 3_600_000);
  assertEquals(first.length, second.length);
  assert(first.every((sum, i) => sum.counter === second[i].counter));
  assert(first.every((sum, i) => sum.counter !== otherHour[i].counter));
});
