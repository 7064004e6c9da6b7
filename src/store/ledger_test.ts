import { assert, assertEquals } from "../../tests/assert.ts";
import { createLogger, silentLogger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { queryUsage } from "./aggregates.ts";
import { Ledger, type LedgerOptions } from "./ledger.ts";
import type { UsageRecord } from "./model.ts";
import { usageRecord } from "../../tests/fixtures/usage_record.ts";
import { timeOrderedId } from "./secrets.ts";
import { aggregateKey } from "./kv_keys.ts";

const HOUR = Date.parse("2026-11-24T10:00:00Z");

/** A ledger on an in-memory KV, flushed by the test; both closed after `fn`. */
async function withLedger(
  options: Partial<LedgerOptions>,
  fn: (store: { kv: Deno.Kv; ledger: Ledger }) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  const ledger = new Ledger({
    kv,
    retentionDays: 1,
    log: silentLogger,
    autoFlush: false,
    ...options,
  });
  try {
    await fn({ kv, ledger });
  } finally {
    await ledger.close();
    kv.close();
  }
}

/** Every stored record: blocks hold a key's records of one flush, older values one record. */
async function stored(kv: Deno.Kv): Promise<UsageRecord[]> {
  const records: UsageRecord[] = [];
  for await (const entry of kv.list<UsageRecord[] | UsageRecord>({ prefix: ["usage"] })) {
    if (Array.isArray(entry.value)) records.push(...entry.value);
    else records.push(entry.value);
  }
  return records;
}

/** Sums of prompt tokens per key, from the raw records and from the hourly aggregates. */
async function totals(kv: Deno.Kv) {
  const fromRecords = new Map<string, { records: number; prompt: number }>();
  for (const record of await stored(kv)) {
    const total = fromRecords.get(record.key_id) ?? { records: 0, prompt: 0 };
    total.records++;
    total.prompt += record.prompt_tokens;
    fromRecords.set(record.key_id, total);
  }
  const rows = await queryUsage(kv, { from: HOUR, to: HOUR, groupBy: "hour", by: "key" });
  const fromAggregates = new Map(
    rows.map((row) => [row.subject, { records: row.requests, prompt: row.prompt_tokens }]),
  );
  return { fromRecords, fromAggregates };
}

Deno.test("Ledger: 1,000 keys' records queued at once all arrive, with every aggregate", async () => {
  await withLedger({}, async ({ kv, ledger }) => {
    const expected = new Map<string, { records: number; prompt: number }>();
    for (let k = 0; k < 1000; k++) {
      const keyId = `key_${String(k).padStart(4, "0")}`;
      for (let i = 0; i < 3; i++) ledger.record(usageRecord(keyId, i));
      expected.set(keyId, { records: 3, prompt: 10 + 11 + 12 });
    }
    await ledger.flush();
    assertEquals(ledger.queued, 0);
    const { fromRecords, fromAggregates } = await totals(kv);
    assertEquals(fromRecords, expected);
    assertEquals(fromAggregates, expected);
    // One block and one by-key pointer per key and flush, not one per request.
    let pointers = 0;
    for await (const _ of kv.list({ prefix: ["usage_by_key"] })) pointers++;
    assertEquals(pointers, 1000);
    let blocks = 0;
    for await (const _ of kv.list({ prefix: ["usage"] })) blocks++;
    assertEquals(blocks, 1000);
  });
});

Deno.test("Ledger: what KV refuses is given up and counted; every other key's records arrive", async () => {
  const kv = await Deno.openKv(":memory:");
  const metrics = new Metrics();
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  const ledger = new Ledger({ kv, retentionDays: 1, log, metrics, autoFlush: false });
  try {
    // An aggregate counter that is not a KvU64: KV refuses any sum into it (and local KV keeps
    // the mutations before the refused one: nothing may be counted twice).
    const poison: Deno.KvKey = ["agg", "hour", "model", "poison", "2026-11-24T10", "requests"];
    await kv.set(poison, "not a number");
    const expected = new Map<string, { records: number; prompt: number }>();
    for (let k = 0; k < 200; k++) {
      const keyId = `key_${k}`;
      ledger.record(usageRecord(keyId, 1));
      expected.set(keyId, { records: 1, prompt: 11 });
      if (k === 100) ledger.record(usageRecord("key_poisoned", 1, { model: "poison" }));
    }
    expected.set("key_poisoned", { records: 1, prompt: 11 });
    // A value larger than KV takes (64 KiB) is refused before it is ever sent.
    ledger.record(usageRecord("key_huge", 1, { backend: "b".repeat(40_000) }));
    await ledger.flush();
    assertEquals(ledger.queued, 0, "nothing is left to retry for ever");
    const { fromRecords, fromAggregates } = await totals(kv);
    assertEquals(fromRecords, expected, "the poisoned record is written without the bad counter");
    assertEquals(fromAggregates, expected);
    assertEquals((await kv.get(poison)).value, "not a number");
    const model = await queryUsage(kv, { from: HOUR, to: HOUR, groupBy: "hour", by: "model" });
    assertEquals(model.find((row) => row.subject === "gpt-test")?.requests, 200);
    assertEquals(model.find((row) => row.subject === "poison")?.prompt_tokens, 11);
    assertEquals(metrics.value("modelgate_ledger_dropped_total", { reason: "rejected" }), 2);
    const refusals = lines.filter((line) => line.includes("KV refused a usage record"));
    assertEquals(refusals.length, 2);
    assert(refusals.some((line) => line.includes("key_poisoned") && line.includes("non-U64")));
    assert(refusals.some((line) => line.includes("key_huge")));
  } finally {
    await ledger.close();
    kv.close();
  }
});

Deno.test("Ledger: counts KV cannot sum are clamped, and the record and other keys are written", async () => {
  await withLedger({}, async ({ kv, ledger }) => {
    ledger.record(usageRecord("key_bad", 0, {
      prompt_tokens: 18446744073709551615,
      completion_tokens: -5,
      total_tokens: Number.NaN,
      latency_ms: 1.5,
      cost: Number.POSITIVE_INFINITY,
    }));
    ledger.record(usageRecord("key_good", 0));
    await ledger.flush();
    assertEquals(ledger.queued, 0);
    const records = new Map((await stored(kv)).map((record) => [record.key_id, record]));
    const bad = records.get("key_bad")!;
    assertEquals(bad.prompt_tokens, Number.MAX_SAFE_INTEGER);
    assertEquals(bad.completion_tokens, 0);
    assertEquals(bad.total_tokens, 0);
    assertEquals(bad.latency_ms, 2);
    assertEquals(bad.cost, 0);
    assertEquals(records.get("key_good")!.prompt_tokens, 10);
  });
});

Deno.test("Ledger: a full queue drops new records, counts them and logs once per interval", async () => {
  const kv = await Deno.openKv(":memory:");
  const metrics = new Metrics();
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  let clock = HOUR;
  const ledger = new Ledger({
    kv,
    retentionDays: 1,
    log,
    metrics,
    maxQueue: 10,
    autoFlush: false,
    now: () => clock,
  });
  try {
    for (let i = 0; i < 15; i++) ledger.record(usageRecord("key_a", i));
    assertEquals(ledger.queued, 10);
    assertEquals(metrics.value("modelgate_ledger_dropped_total", { reason: "queue_full" }), 5);
    assertEquals(lines.filter((line) => line.includes("ledger queue is full")).length, 1);
    clock += 60_000;
    ledger.record(usageRecord("key_a", 99));
    assertEquals(lines.filter((line) => line.includes("ledger queue is full")).length, 2);
    assert(metrics.render().includes("modelgate_ledger_queued 10"));
    await ledger.flush();
    assertEquals(ledger.queued, 0);
    const { fromRecords } = await totals(kv);
    assertEquals(fromRecords.get("key_a")?.records, 10);
  } finally {
    await ledger.close();
    kv.close();
  }
});

Deno.test("Ledger: close() writes every queued record, over many atomic operations", async () => {
  const kv = await Deno.openKv(":memory:");
  const ledger = new Ledger({ kv, retentionDays: 1, log: silentLogger, autoFlush: false });
  try {
    for (let i = 0; i < 5000; i++) ledger.record(usageRecord(`key_${i % 700}`, i % 7));
    await ledger.close();
    const { fromRecords } = await totals(kv);
    let records = 0;
    for (const total of fromRecords.values()) records += total.records;
    assertEquals(records, 5000);
  } finally {
    kv.close();
  }
});

Deno.test("Ledger: while KV fails, records stay queued; close() gives up after its timeout", async () => {
  // One block, and several (a key's records of one flush are split past 32 KiB).
  for (const count of [1, 50, 500]) {
    const kv = await Deno.openKv(":memory:");
    const metrics = new Metrics();
    const ledger = new Ledger({
      kv,
      retentionDays: 1,
      log: silentLogger,
      metrics,
      autoFlush: false,
      closeTimeoutMs: 300,
    });
    for (let i = 0; i < count; i++) ledger.record(usageRecord("key_a", i));
    kv.close();
    await ledger.flush();
    assertEquals(ledger.queued, count, "a failing KV loses nothing while the gateway runs");
    await ledger.flush();
    assertEquals(ledger.queued, count, "nor at the next flush");
    assertEquals(metrics.value("modelgate_ledger_dropped_total", { reason: "rejected" }), 0);
    await ledger.close();
    assertEquals(metrics.value("modelgate_ledger_dropped_total", { reason: "shutdown" }), count);
  }
});

Deno.test("Ledger: a flush of 400 records of 10 keys is one atomic operation", async () => {
  await withLedger({}, async ({ kv, ledger }) => {
    for (let i = 0; i < 400; i++) ledger.record(usageRecord(`key_${i % 10}`, i));
    await ledger.flush();
    // Every atomic operation of a flush sets one short-lived commit marker (kv_commit.ts).
    let operations = 0;
    for await (const _ of kv.list({ prefix: ["meta", "commit"] })) operations++;
    assertEquals(operations, 1);
    const { fromRecords } = await totals(kv);
    assertEquals(fromRecords.get("key_3")?.records, 40);
  });
});

Deno.test("Ledger: a block KV refuses whole is written record by record; only the bad record is lost", async () => {
  const metrics = new Metrics();
  await withLedger({ metrics }, async ({ kv, ledger }) => {
    for (let i = 0; i < 5; i++) {
      // A value KV cannot serialise, which no size estimate can see: the whole block is refused.
      const backend = i === 2 ? Symbol("not storable") as unknown as string : "up";
      ledger.record(usageRecord("key_a", i, { backend }));
    }
    ledger.record(usageRecord("key_b", 0));
    await ledger.flush();
    assertEquals(ledger.queued, 0);
    const { fromRecords, fromAggregates } = await totals(kv);
    const expected = new Map([
      ["key_a", { records: 4, prompt: 10 + 11 + 13 + 14 }],
      ["key_b", { records: 1, prompt: 10 }],
    ]);
    assertEquals(fromRecords, expected);
    assertEquals(fromAggregates, expected, "nothing of the refused block is counted twice");
    assertEquals(metrics.value("modelgate_ledger_dropped_total", { reason: "rejected" }), 1);
  });
});

Deno.test("Ledger: one key's 3,000 records of one flush are several blocks within KV's value limit", async () => {
  await withLedger({}, async ({ kv, ledger }) => {
    for (let i = 0; i < 3000; i++) {
      ledger.record(usageRecord("key_a", i, { requested_model: `model-${"m".repeat(200)}` }));
    }
    await ledger.flush();
    let blocks = 0;
    for await (const entry of kv.list<UsageRecord[]>({ prefix: ["usage"] })) {
      blocks++;
      assert(Array.isArray(entry.value));
    }
    assert(blocks > 10, `${blocks} blocks`);
    assertEquals((await totals(kv)).fromRecords.get("key_a")?.records, 3000);
  });
});

Deno.test("Ledger: listRequests() pages blocks and records stored one per value, newest first", async () => {
  await withLedger({}, async ({ kv, ledger }) => {
    // Records as versions before blocks stored them: one value and one pointer each.
    for (let i = 0; i < 3; i++) {
      const record = usageRecord(i === 1 ? "key_b" : "key_a", i, { request_id: `old_${i}` });
      const seq = timeOrderedId(Date.parse(record.time));
      await kv.set(["usage", seq], record);
      await kv.set(["usage_by_key", record.key_id, seq], seq);
    }
    for (let i = 10; i < 20; i++) ledger.record(usageRecord("key_a", i));
    for (let i = 20; i < 25; i++) ledger.record(usageRecord("key_b", i, { model: "other" }));
    await ledger.flush();
    for (let i = 30; i < 34; i++) ledger.record(usageRecord("key_a", i));
    await ledger.flush();

    const all = async (options: { keyId?: string; model?: string; limit: number }) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        assert(ids.length < 100, "paging ends");
        const page = await ledger.listRequests({ ...options, cursor });
        assert(page.data.length <= options.limit);
        ids.push(...page.data.map((record) => record.request_id));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return ids;
    };
    const a = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `req_key_a_${to - 1 - i}`);
    const b = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `req_key_b_${to - 1 - i}`);
    for (const limit of [1, 3, 7, 500]) {
      const ids = await all({ limit });
      assertEquals(ids.length, 22, `limit ${limit}`);
      assertEquals(new Set(ids).size, 22, "no record twice");
      assertEquals(ids.slice(0, 4), a(30, 34), "the newest flush first");
      assertEquals(ids.slice(-3), ["old_2", "old_1", "old_0"], "records stored one per value last");
      assertEquals(await all({ limit, keyId: "key_a" }), [
        ...a(30, 34),
        ...a(10, 20),
        "old_2",
        "old_0",
      ]);
      assertEquals(await all({ limit, keyId: "key_b" }), [...b(20, 25), "old_1"]);
      assertEquals(await all({ limit, model: "other" }), b(20, 25));
    }
    for (const cursor of ["zzz", "1.", "-1.abc", "1.a/b", `9999999.${"a".repeat(19)}`]) {
      let error: unknown = null;
      await ledger.listRequests({ cursor }).catch((err) => error = err);
      assert(error instanceof TypeError && /cursor/.test(error.message), cursor);
    }
  });
});

/** Local KV whose next `failures` getMany() calls fail: KV going away in the middle of a flush. */
function getManyFailing(kv: Deno.Kv, failures: number): Deno.Kv {
  return new Proxy(kv, {
    get(target, name) {
      if (name === "getMany" && failures > 0) {
        return () => {
          failures--;
          return Promise.reject(new Error("KV away"));
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("Ledger: a block next to a counter that is not a number is stored once, counted once", async () => {
  const bucket = "2026-11-24T10";
  const keyPrompt = aggregateKey("hour", "key", "key_a", bucket, "prompt_tokens");
  const modelRequests = aggregateKey("hour", "model", "bad", bucket, "requests");
  // Whether KV can say which counters are bad (then the rest is written) or not (then nothing
  // may be written again: local KV keeps what came before the bad sum).
  for (const away of [false, true]) {
    const raw = await Deno.openKv(":memory:");
    const kv = away ? getManyFailing(raw, 1) : raw;
    const metrics = new Metrics();
    const ledger = new Ledger({
      kv,
      retentionDays: 1,
      log: silentLogger,
      metrics,
      autoFlush: false,
    });
    try {
      await raw.set(keyPrompt, "not a number");
      await raw.set(modelRequests, "not a number");
      for (let i = 0; i < 5; i++) ledger.record(usageRecord("key_a", i));
      for (let i = 0; i < 9; i++) {
        ledger.record(usageRecord("key_b", i, i === 4 ? { model: "bad" } : {}));
      }
      await ledger.flush();
      assertEquals(ledger.queued, 0);
      const records = await stored(raw);
      const ids = records.map((record) => record.request_id);
      assertEquals(new Set(ids).size, ids.length, "no record is stored twice");
      const requests = async (keyId: string) =>
        (await raw.get<Deno.KvU64>(aggregateKey("hour", "key", keyId, bucket, "requests"))).value
          ?.value ?? 0n;
      const dropped = metrics.value("modelgate_ledger_dropped_total", { reason: "rejected" });
      if (!away) {
        assertEquals(records.length, 14);
        assertEquals([await requests("key_a"), await requests("key_b")], [5n, 9n]);
        // Every key_a record adds to the bad key counter; one key_b record to the bad model one.
        assertEquals(dropped, 5 + 1);
      } else {
        assert(records.length <= 14);
        assert(await requests("key_a") <= 5n && await requests("key_b") <= 9n, "counted once");
        assertEquals(dropped + records.length >= 14, true, "what is not stored is counted");
      }
      assertEquals((await raw.get(keyPrompt)).value, "not a number");
    } finally {
      await ledger.close();
      raw.close();
    }
  }
});
