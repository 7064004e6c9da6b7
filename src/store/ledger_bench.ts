/**
 * The ledger's cost per request: `deno bench src/store/ledger_bench.ts`. One iteration is one
 * flush tick at 3,000 requests per second: 300 records of 10 keys and 2 models recorded, then
 * written to an in-memory KV (the SQLite work is part of it, as in production).
 */
import { usageRecord } from "../../tests/fixtures/usage_record.ts";
import { silentLogger } from "../log.ts";
import { Ledger } from "./ledger.ts";
import type { UsageRecord } from "./model.ts";

const RECORDS_PER_TICK = 300;

const kv = await Deno.openKv(":memory:");
const ledger = new Ledger({ kv, retentionDays: 1, log: silentLogger, autoFlush: false });
let tickMs = Date.parse("2026-11-24T10:00:00Z");

/** The records of the next tick (their times 1 ms apart: a second more or less is no matter). */
function nextTick(): UsageRecord[] {
  const records: UsageRecord[] = [];
  for (let i = 0; i < RECORDS_PER_TICK; i++) {
    const model = i % 3 ? "qwen3:8b" : "llama3.1:70b";
    records.push(usageRecord(`key_${i % 10}`, i, { startMs: tickMs, model }));
  }
  tickMs += RECORDS_PER_TICK;
  return records;
}

Deno.bench({
  name: `Ledger: ${RECORDS_PER_TICK} records recorded and flushed (one tick at 3,000 req/s)`,
  async fn(b) {
    const records = nextTick();
    b.start();
    for (const record of records) ledger.record(record);
    await ledger.flush();
    b.end();
  },
});

Deno.bench({
  name: `Ledger: ${RECORDS_PER_TICK} records recorded (the request path alone)`,
  async fn(b) {
    const records = nextTick();
    b.start();
    for (const record of records) ledger.record(record);
    b.end();
    await ledger.flush();
  },
});
