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
