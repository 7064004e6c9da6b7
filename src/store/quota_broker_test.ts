import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { silentLogger } from "../log.ts";
import { Metrics } from "../metrics.ts";
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

const TTL = 30_000;

/** A broker driven by hand: no timer, the test's clock. */
function manualBroker(kv: Deno.Kv, clock: { t: number }, options: { metrics?: Metrics } = {}) {
  return new QuotaBroker({
    kv,
    now: () => clock.t,
    log: silentLogger,
    autoFlush: false,
    leaseTtlMs: TTL,
    ...options,
  });
}

async function reserveAll(broker: QuotaBroker, k: KeyRecord, count: number, tokens: number) {
  const reservations = [];
  for (let i = 0; i < count; i++) {
    const result = await broker.reserve(k, tokens);
    assert(result.ok, `reservation ${i}`);
    reservations.push(result.reservation);
  }
  return reservations;
}

Deno.test("QuotaBroker: a killed instance's reservations stop counting once its lease expires", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const k = key({ quota_tokens: 100_000 });
  // 20 streams with max_tokens 4,000 in flight; then the instance dies (no close, no flush).
  await reserveAll(manualBroker(kv, clock), k, 20, 4000);
  const held = (await store.usage(k.id, utcDay(clock.t))).reserved_tokens;
  assert(held >= 80_000 && held <= 85_000, `in flight plus at most 5%: ${held}`);
  const other = manualBroker(kv, clock);
  try {
    const early = await other.reserve(k, 30_000);
    assert(!early.ok && early.reason === "quota", "a live lease counts");
    clock.t += TTL + 1;
    assertEquals((await store.usage(k.id, utcDay(clock.t))).reserved_tokens, 0);
    const later = await other.reserve(k, 30_000);
    assert(later.ok, "the dead instance's lease no longer counts");
    const leases = [];
    for await (const entry of kv.list({ prefix: ["quota_lease"] })) leases.push(entry.key.at(-1));
    assertEquals(leases, [other.instanceId], "the expired lease was deleted on the way");
  } finally {
    await other.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: a live instance renews its lease, which outlives the TTL", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const one = manualBroker(kv, clock);
  const two = manualBroker(kv, clock);
  try {
    const k = key({ quota_tokens: 10_000 });
    const [long] = await reserveAll(one, k, 1, 9000);
    for (let second = 0; second < 95; second += 5) {
      clock.t += 5000;
      await one.flush();
    }
    const refused = await two.reserve(k, 2000);
    assert(!refused.ok, "after 95 s the renewed lease still holds 9,000 of 10,000");
    one.settle(long, 8000);
    await one.flush();
    clock.t += 1001;
    await one.flush();
    assert((await two.reserve(k, 2000)).ok, "settled and returned, the rest is free again");
  } finally {
    await one.close();
    await two.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: beyond requests in flight an instance keeps at most 5% of a budget", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const broker = manualBroker(kv, clock);
  try {
    const k = key({ quota_tokens: 100_000, daily_requests: 1000 });
    const reservations = await reserveAll(broker, k, 20, 4000);
    // All but one end, using far less than reserved.
    for (const r of reservations.slice(1)) broker.settle(r, 100);
    await broker.flush();
    let usage = await store.usage(k.id, utcDay(clock.t));
    assertEquals(usage.used_tokens, 1900);
    assert(
      usage.reserved_tokens <= 4000 + 5000,
      `one request in flight plus 5%: ${usage.reserved_tokens}`,
    );
    broker.settle(reservations[0], 100);
    await broker.flush();
    usage = await store.usage(k.id, utcDay(clock.t));
    assert(usage.reserved_tokens <= 5000, `idle slack at most 5%: ${usage.reserved_tokens}`);
    clock.t += 1001;
    await broker.flush();
    usage = await store.usage(k.id, utcDay(clock.t));
    assertEquals(usage.reserved_tokens, 0, "an idle budget is given back whole");
    assertEquals(usage.used_tokens, 2000);
    assertEquals(usage.daily_requests, 20);
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: reset-usage frees every instance's leases; requests in flight are charged to the fresh quota", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const metrics = new Metrics();
  const here = manualBroker(kv, clock);
  const elsewhere = manualBroker(kv, clock, { metrics });
  try {
    const k = key({ quota_tokens: 10_000 });
    await kv.set(["keys", k.id], k);
    const [a] = await reserveAll(here, k, 1, 4000);
    const [b] = await reserveAll(elsewhere, k, 1, 4000);
    here.settle(a, 3000);
    await here.flush();
    await store.resetUsage(k.id, utcDay(clock.t));
    here.forget(k.id, "reset");
    let usage = await store.usage(k.id, utcDay(clock.t));
    assertEquals([usage.used_tokens, usage.reserved_tokens], [0, 0]);
    // The request in flight elsewhere ends after the reset: it counts toward the fresh quota.
    elsewhere.settle(b, 2500);
    await elsewhere.flush();
    usage = await store.usage(k.id, utcDay(clock.t));
    assertEquals(usage.used_tokens, 2500);
    // At its next renewal the other instance finds its lease gone.
    clock.t += 10_001;
    await elsewhere.flush();
    assertEquals(metrics.value("modelgate_quota_leases_lost_total"), 1);
    assert((await here.reserve(k, 7500)).ok, "the rest of the fresh quota is free");
    assert(!(await elsewhere.reserve(k, 1)).ok, "and only that");
    usage = await store.usage(k.id, utcDay(clock.t));
    assert(usage.used_tokens >= 0 && usage.reserved_tokens === 7500, JSON.stringify(usage));
  } finally {
    await here.close();
    await elsewhere.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: a usage counter KV refuses is given up; other keys' usage is written", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const metrics = new Metrics();
  const broker = manualBroker(kv, clock, { metrics });
  try {
    await kv.set(["quota", "key_bad", "tokens", "used"], "not a counter");
    const keys = ["key_bad", ...[...Array(50).keys()].map((i) => `key_${i}`)];
    for (const id of keys) {
      const [r] = await reserveAll(broker, key({ id, quota_tokens: 1000 }), 1, 100);
      broker.settle(r, id === "key_1" ? 18446744073709551615 : 40);
    }
    await broker.flush();
    await broker.flush();
    assertEquals((await store.usage("key_0", utcDay(clock.t))).used_tokens, 40);
    assertEquals((await store.usage("key_49", utcDay(clock.t))).used_tokens, 40);
    assertEquals(
      (await store.usage("key_1", utcDay(clock.t))).used_tokens,
      Number.MAX_SAFE_INTEGER,
      "an amount KV cannot sum is clamped, never thrown on",
    );
    assertEquals(
      metrics.value("modelgate_quota_usage_dropped_total", { dimension: "tokens" }),
      40,
    );
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: reservation counters of the version before leases are ignored and deleted once", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  await kv.atomic()
    .sum(["quota", "key_a", "tokens", "reserved_added"], 85_000n)
    .sum(["quota", "key_a", "tokens", "reserved_released"], 0n)
    .sum(["quota", "key_a", "tokens", "used"], 1000n)
    .sum(["quota_day", "key_a", "2026-11-24", "day_tokens", "reserved_added"], 500n)
    .commit();
  const broker = manualBroker(kv, clock);
  try {
    assert((await broker.reserve(key({ quota_tokens: 100_000 }), 99_000)).ok);
    await broker.flush();
    await waitFor(async () => (await kv.get(["meta", "quota_legacy_reservations_cleared"])).value);
    const left = [];
    for await (const entry of kv.list({ prefix: ["quota"] })) left.push(entry.key.at(-1));
    for await (const entry of kv.list({ prefix: ["quota_day"] })) left.push(entry.key.at(-1));
    assertEquals(left.sort(), ["used", "version"]);
  } finally {
    await broker.close();
    kv.close();
  }
});

async function waitFor(check: () => Promise<unknown>) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("condition not met in time");
}

Deno.test("QuotaBroker: an instance cut off past the TTL finds its lease taken and reserves its requests in flight again", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const metrics = new Metrics();
  const slow = manualBroker(kv, clock, { metrics });
  const other = manualBroker(kv, clock);
  try {
    const k = key({ quota_tokens: 10_000 });
    const [inFlight] = await reserveAll(slow, k, 1, 4000);
    clock.t += TTL + 1; // `slow` renewed nothing meanwhile
    await reserveAll(other, k, 1, 9000);
    await slow.flush();
    assertEquals(metrics.value("modelgate_quota_leases_lost_total"), 1);
    const refused = await slow.reserve(k, 500);
    assert(!refused.ok, "its request in flight must be covered again before a new one is");
    slow.settle(inFlight, 4000);
    await slow.flush();
    const store = new KeyStore({ kv, now: () => clock.t });
    assertEquals((await store.usage(k.id, utcDay(clock.t))).used_tokens, 4000);
  } finally {
    await slow.close();
    await other.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: reserve() answers at once while the lease has room; a request arriving while it grows waits", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const broker = manualBroker(kv, clock);
  try {
    const k = key({ quota_tokens: 10_000, daily_requests: 1000 });
    const first = broker.reserve(k, 100);
    assert(first instanceof Promise, "the first request grows the lease");
    const second = broker.reserve(k, 10);
    assert(second instanceof Promise, "one arriving meanwhile waits for the growth");
    assert((await first).ok && (await second).ok);
    // The lease grew by 5% of the budget: 500, of which 110 are taken.
    const third = broker.reserve(k, 300);
    assert(!(third instanceof Promise) && third.ok, "with room in the lease: no promise");
    const fourth = broker.reserve(k, 200);
    assert(fourth instanceof Promise, "past the room the lease grows again");
    assert((await fourth).ok);
    const held = (await store.usage(k.id, utcDay(clock.t))).reserved_tokens;
    assert(held >= 610, `the lease covers every reservation: ${held}`);
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: a reservation that fails on a lease change gives back what it took", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const broker = manualBroker(kv, clock);
  try {
    const k = key({ quota_tokens: 100_000, daily_tokens: 100_000 });
    // The daily budget's version entry is not a counter: growing its lease fails in KV.
    await kv.set(["quota_day", k.id, utcDay(clock.t), "day_tokens", "version"], "broken");
    await assertRejects(async () => await broker.reserve(k, 10));
    clock.t += 1001;
    await broker.flush();
    const usage = await store.usage(k.id, utcDay(clock.t));
    assertEquals(usage.reserved_tokens, 0, "the lifetime budget holds nothing for it");
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: when a key's limits change, usage moves between leased and untracked budgets and all of it is counted", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const broker = manualBroker(kv, clock);
  try {
    const k = key({ quota_tokens: 1000 });
    const charge = async (record: KeyRecord, tokens: number) => {
      const result = await broker.reserve(record, tokens);
      assert(result.ok);
      broker.settle(result.reservation, tokens);
    };
    await charge(k, 100);
    // The same record object changed in place, then a new record (as the key directory makes).
    k.daily_tokens = 1000;
    await charge(k, 20);
    await charge({ ...k, quota_tokens: null }, 3);
    await broker.flush();
    const usage = await store.usage(k.id, utcDay(clock.t));
    assertEquals([usage.used_tokens, usage.daily_tokens, usage.daily_requests], [123, 123, 3]);
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: an idle key's budgets leave memory once its leases are returned; its next request is served as before", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { t: Date.parse("2026-11-24T12:00:00Z") };
  const store = new KeyStore({ kv, now: () => clock.t });
  const broker = manualBroker(kv, clock);
  try {
    const keys = [...Array(50).keys()].map((i) => key({ id: `key_${i}`, quota_tokens: 1000 }));
    for (const k of keys) {
      const [r] = await reserveAll(broker, k, 1, 100);
      broker.settle(r, 40);
    }
    assertEquals(broker.budgetsHeld, 50);
    await broker.flush();
    clock.t += 1001;
    await broker.flush(); // the idle leases are returned
    await broker.flush(); // and the blocks holding nothing dropped
    assertEquals(broker.budgetsHeld, 0);
    const [again] = await reserveAll(broker, keys[7], 1, 100);
    broker.settle(again, 60);
    await broker.flush();
    assertEquals(broker.budgetsHeld, 1);
    assertEquals((await store.usage("key_7", utcDay(clock.t))).used_tokens, 100);
    assertEquals((await store.usage("key_8", utcDay(clock.t))).used_tokens, 40);
  } finally {
    await broker.close();
    kv.close();
  }
});

Deno.test("QuotaBroker: a reservation KV fails half-way through gives back the budgets it had taken", async () => {
  const kv = await Deno.openKv(":memory:");
  const now = () => Date.parse("2026-11-24T12:00:00Z");
  const broker = new QuotaBroker({ kv, now, log: silentLogger, autoFlush: false });
  try {
    const k = key({ quota_tokens: 1_000_000, daily_requests: 10 });
    const first = await broker.reserve(k, 10);
    assert(first.ok);
    broker.settle(first.reservation, 10);
    // The lifetime lease holds 5% of the quota; today's request lease only the request it served.
    kv.close();
    const failed = await Promise.resolve(broker.reserve(k, 10)).then(
      () => null,
      (err: Error) => err,
    );
    assert(failed instanceof Error, "today's lease cannot grow while KV is away");
    // Without KV, only what the lifetime lease holds can be reserved: all of it, if nothing leaked.
    const rest = await Promise.resolve(
      broker.reserve(key({ quota_tokens: 1_000_000 }), 50_000 - 10),
    )
      .catch((err: Error) => ({ ok: false, error: err.message }));
    assert(
      rest.ok,
      `the failed reservation still holds part of the lease: ${JSON.stringify(rest)}`,
    );
  } finally {
    await broker.close().catch(() => {});
  }
});
