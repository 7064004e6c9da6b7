/**
 * The quota broker's cost per request: `deno bench src/store/quota_broker_bench.ts`. A key with a
 * lifetime, a daily token and a daily request budget reserves and settles; its lease has room,
 * so no KV round trip is needed (the common case), and usage is flushed every 300 requests.
 */
import { silentLogger } from "../log.ts";
import type { KeyRecord } from "./model.ts";
import { QuotaBroker } from "./quota_broker.ts";

const REQUESTS = 300;

const kv = await Deno.openKv(":memory:");
const broker = new QuotaBroker({
  kv,
  now: () => Date.now(),
  log: silentLogger,
  autoFlush: false,
  idleMs: 3_600_000,
});
const key = {
  id: "key_bench",
  quota_tokens: 1e15,
  daily_tokens: 1e15,
  daily_requests: 1e12,
} as KeyRecord;

Deno.bench({
  name: `QuotaBroker: ${REQUESTS} reservations settled (lease has room)`,
  async fn(b) {
    b.start();
    for (let i = 0; i < REQUESTS; i++) {
      const result = await broker.reserve(key, 1000);
      if (!result.ok) throw new Error(`refused: ${result.reason}`);
      broker.settle(result.reservation, 120);
    }
    b.end();
    await broker.flush();
  },
});

// 100,000 keys that each sent one request a while ago: the tick's upkeep must not grow with them.
const idleKv = await Deno.openKv(":memory:");
let idleClock = Date.parse("2026-11-24T12:00:00Z");
const idleBroker = new QuotaBroker({
  kv: idleKv,
  now: () => idleClock,
  log: silentLogger,
  autoFlush: false,
});
for (let i = 0; i < 100_000; i++) {
  const result = await idleBroker.reserve({ ...key, id: `key_${i}` }, 10);
  if (result.ok) idleBroker.settle(result.reservation, 5);
}
for (let tick = 0; tick < 3; tick++) {
  idleClock += 1000;
  await idleBroker.flush();
}

Deno.bench({
  name: "QuotaBroker: one flush tick after 100,000 keys went idle",
  async fn() {
    idleClock += 100;
    await idleBroker.flush();
  },
});
