import { assert, assertEquals } from "../../tests/assert.ts";
import { silentLogger } from "../log.ts";
import { KeyStore } from "./key_store.ts";
import type { KeyRecord } from "./model.ts";
import { QuotaBroker, utcDay } from "./quota_broker.ts";

const key = (limits: Partial<KeyRecord>) =>
  ({
    id: "key_a",
    quota_tokens: null,
    daily_tokens: null,
    daily_requests: null,
    ...limits,
  }) as KeyRecord;

Deno.test("QuotaBroker: two instances reserving at once never exceed the budget together", async () => {
  const kv = await Deno.openKv(":memory:");
  const now = () => Date.parse("2026-11-24T12:00:00Z");
  const one = new QuotaBroker({ kv, now, log: silentLogger });
  const two = new QuotaBroker({ kv, now, log: silentLogger });
  try {
    const k = key({ quota_tokens: 300 });
    const results = await Promise.all(
      [...Array(100).keys()].map((i) => (i % 2 ? one : two).reserve(k, 30)),
    );
    assertEquals(results.filter((r) => r.ok).length, 10);
    assertEquals(results.filter((r) => !r.ok && r.reason === "quota").length, 90);
  } finally {
    await one.close();
    await two.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: settlement refunds the unused part and writes used tokens; idle blocks return", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = Date.parse("2026-11-24T12:00:00Z");
  const broker = new QuotaBroker({ kv, now: () => clock, log: silentLogger, idleMs: 1000 });
  const store = new KeyStore({ kv, now: () => clock });
  try {
    const k = key({ quota_tokens: 10_000, daily_requests: 5 });
    const first = await broker.reserve(k, 400);
    assert(first.ok);
    broker.settle(first.reservation, 150);
    await broker.flush();
    let usage = await store.usage(k.id, utcDay(clock));
    assertEquals(usage.used_tokens, 150);
    assertEquals(usage.daily_requests, 1);
    assert(usage.reserved_tokens > 0, "the block stays leased while in use");
    clock += 1001;
    await broker.flush();
    usage = await store.usage(k.id, utcDay(clock));
    assertEquals(usage.reserved_tokens, 0, "an idle block is returned");
    for (let i = 0; i < 4; i++) {
      const r = await broker.reserve(k, 10);
      assert(r.ok);
      broker.settle(r.reservation, 10);
    }
    const sixth = await broker.reserve(k, 10);
    assert(!sixth.ok && sixth.reason === "daily_requests");
    clock = Date.parse("2026-11-25T00:00:01Z");
    assert((await broker.reserve(k, 10)).ok, "daily budgets reset at 00:00 UTC");
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: daily counters of days before yesterday are swept", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = Date.parse("2026-11-20T12:00:00Z");
  const broker = new QuotaBroker({ kv, now: () => clock, log: silentLogger });
  try {
    const k = key({ daily_requests: 100 });
    for (const day of ["2026-11-20T12:00:00Z", "2026-11-23T12:00:00Z", "2026-11-24T12:00:00Z"]) {
      clock = Date.parse(day);
      const r = await broker.reserve(k, 5);
      assert(r.ok);
      broker.settle(r.reservation, 5);
      await broker.flush();
    }
    await waitForDays(kv, ["2026-11-23", "2026-11-24"]);
  } finally {
    await broker.close();
    kv.close();
  }
});

async function waitForDays(kv: Deno.Kv, expected: string[]) {
  for (let i = 0; i < 100; i++) {
    const days = new Set<string>();
    for await (const entry of kv.list({ prefix: ["quota_day"] })) days.add(entry.key[2] as string);
    if ([...days].sort().join() === expected.join()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("old daily counters were not swept");
}
