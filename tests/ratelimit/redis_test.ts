import { Redis } from "ioredis";
import { assert, assertEquals } from "../assert.ts";
import { waitFor } from "../helpers.ts";
import { Metrics } from "../../src/metrics.ts";
import { createMemoryLimiter } from "../../src/ratelimit/memory.ts";
import { createRedisLimiter, type RedisLimiterOptions } from "../../src/ratelimit/redis.ts";
import { startRedis, type TestRedis } from "../fakes/redis_server.ts";
import { testRateLimiter } from "./contract.ts";

// One redis-server for the contract suite; every test uses fresh key names via a unique prefix.
let redis: TestRedis | null = null;
let run = 0;

testRateLimiter("redis limiter", async (clock) => {
  redis ??= await startRedis();
  const limiter = createRedisLimiter({ url: redis.url, clock, timeoutMs: 1000 });
  await limiter.ready(5000);
  await limiter.client.flushall();
  run++;
  return limiter;
});

/** A limiter on the shared redis-server, closed by the caller. */
async function limiterOn(server: TestRedis, options: Partial<RedisLimiterOptions> = {}) {
  const limiter = createRedisLimiter({ url: server.url, timeoutMs: 1000, ...options });
  await limiter.ready(5000);
  return limiter;
}

const oneAtATime = { rpm: null, burst: null, tpm: null, maxConcurrency: 1 };

Deno.test("redis limiter: two instances sharing one Redis enforce one combined limit", async () => {
  redis ??= await startRedis();
  const one = await limiterOn(redis);
  const two = await limiterOn(redis);
  try {
    const l = { rpm: 60, burst: 10, tpm: null, maxConcurrency: null };
    const decisions = await Promise.all(
      [...Array(100).keys()].map((i) => (i % 2 === 0 ? one : two).admit(`shared-${run}`, l)),
    );
    assertEquals(decisions.filter((d) => d.ok).length, 10);
    const keys = await one.client.keys("mg:rl:*");
    assert(keys.every((key) => /^mg:rl:\{[^}]+\}:/.test(key)), keys.join(","));
    const ttl = await one.client.pttl(`mg:rl:{shared-${run}}:req`);
    assert(ttl > 0, "limiter keys expire on their own");
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("redis limiter: a released slot is free for another instance within moments", async () => {
  redis ??= await startRedis();
  const one = await limiterOn(redis);
  const two = await limiterOn(redis);
  try {
    const held = await one.admit("handover", oneAtATime);
    assert(held.ok);
    assert(!(await two.admit("handover", oneAtATime)).ok);
    await held.lease.release(0);
    const started = Date.now();
    let decision = await two.admit("handover", oneAtATime);
    while (!decision.ok && Date.now() - started < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      decision = await two.admit("handover", oneAtATime);
    }
    assert(decision.ok, "the other instance got the slot");
    assert(Date.now() - started < 1000, `it took ${Date.now() - started} ms`);
    await decision.lease.release(0);
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("redis limiter: a release lost with the connection is sent again, so the slot is not leaked", async () => {
  redis ??= await startRedis();
  const one = await limiterOn(redis);
  const two = await limiterOn(redis);
  const admin = new Redis(redis.url);
  try {
    const held = await one.admit("dropped", oneAtATime);
    assert(held.ok);
    // The connection drops just as the request ends.
    const id = await one.client.client("ID");
    await admin.client("KILL", "ID", String(id));
    await held.lease.release(0);
    await waitFor(async () => {
      const d = await two.admit("dropped", oneAtATime);
      if (d.ok) await d.lease.release(0);
      return d.ok;
    }, 5000);
    assertEquals(one.pendingReleases, 0);
  } finally {
    admin.disconnect();
    await one.close();
    await two.close();
  }
});

Deno.test("redis limiter: a running request's lease is renewed; one nobody renews expires after the TTL", async () => {
  redis ??= await startRedis();
  const clock = { t: 1_700_000_000_000 };
  const options = { clock: () => clock.t, leaseTtlMs: 30_000 };
  const one = await limiterOn(redis, options);
  const two = await limiterOn(redis, options);
  try {
    assert((await one.admit("renewed", oneAtATime)).ok);
    for (let i = 0; i < 6; i++) {
      clock.t += 10_000;
      await one.renew();
    }
    assert(!(await two.admit("renewed", oneAtATime)).ok, "60 s later the slot is still held");
    // The instance dies: nothing releases or renews its lease any more.
    await one.close();
    clock.t += 29_000;
    assert(!(await two.admit("renewed", oneAtATime)).ok);
    clock.t += 1_001;
    assert((await two.admit("renewed", oneAtATime)).ok, "30 s after the last renewal it is free");
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("redis limiter: after Redis restarts empty, running requests' leases are put back; releases wait for it", async () => {
  const server = await startRedis();
  const metrics = new Metrics();
  const one = await limiterOn(server, { metrics, maxPendingReleases: 3 });
  const two = await limiterOn(server);
  try {
    const many = { rpm: null, burst: null, tpm: null, maxConcurrency: 100 };
    const running = [];
    for (let i = 0; i < 5; i++) {
      const d = await one.admit("restart-many", many);
      assert(d.ok);
      running.push(d.lease);
    }
    const held = await one.admit("restart", oneAtATime);
    assert(held.ok);

    await server.stop();
    for (const lease of running) await lease.release(0);
    assertEquals(one.pendingReleases, 3, "at most maxPendingReleases wait");
    assertEquals(metrics.value("modelgate_ratelimit_releases_dropped_total"), 2);
    await server.start();
    await Promise.all([one.ready(5000), two.ready(5000)]);
    await waitFor(async () => {
      await one.renew();
      return (await one.client.zcard("mg:rl:{restart}:slots").catch(() => 0)) === 1;
    }, 5000);
    assert(!(await two.admit("restart", oneAtATime)).ok, "the running request holds its slot");
    await held.lease.release(0);
    await waitFor(async () => {
      const d = await two.admit("restart", oneAtATime);
      return d.ok;
    }, 5000);
    await waitFor(() => one.pendingReleases === 0, 5000);
  } finally {
    await one.close();
    await two.close();
    await server.close();
  }
});

Deno.test("redis limiter: a finished request costs no command of its own when its key's next admission carries it", async () => {
  redis ??= await startRedis();
  const limiter = await limiterOn(redis, { settleDelayMs: 60_000, clock: () => 1_700_000_000_000 });
  try {
    const l = { rpm: 1e6, burst: 1e6, tpm: 1e9, maxConcurrency: 10 };
    await limiter.client.config("RESETSTAT");
    for (let i = 0; i < 200; i++) {
      const d = await limiter.admit("carried", l);
      assert(d.ok);
      await d.lease.release(10);
    }
    const stats = await limiter.client.info("commandstats");
    const calls = (name: string) =>
      Number(stats.match(new RegExp(`cmdstat_${name}:calls=(\\d+)`))?.[1] ?? 0);
    const scripts = calls("evalsha") + calls("eval");
    assert(scripts <= 201, `${scripts} script calls for 200 admissions and releases`);
    assertEquals(limiter.pendingReleases, 1, "the last release waits for the next admission");
    const tokens = await limiter.client.hget("mg:rl:{carried}:tok", "tokens");
    assertEquals(Number(tokens), 1e9 - 199 * 10, "every carried debit was applied once");
  } finally {
    await limiter.close();
  }
});

Deno.test("redis limiter: admissions of one key arriving together are one script call", async () => {
  redis ??= await startRedis();
  const limiter = await limiterOn(redis);
  try {
    const l = { rpm: 60, burst: 10, tpm: 1000, maxConcurrency: 20 };
    await limiter.admit("warm-up", l); // loads the script into Redis' cache
    await limiter.client.config("RESETSTAT");
    const decisions = await Promise.all(
      [...Array(100).keys()].map(() => limiter.admit("together", l)),
    );
    assertEquals(decisions.filter((d) => d.ok).length, 10);
    const stats = await limiter.client.info("commandstats");
    const calls = Number(stats.match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0) +
      Number(stats.match(/cmdstat_eval:calls=(\d+)/)?.[1] ?? 0);
    assertEquals(calls, 1);
    for (const d of decisions) if (d.ok) await d.lease.release(0);
  } finally {
    await limiter.close();
  }
});

Deno.test({
  name: "redis limiter: (cleanup) stop the shared redis-server",
  fn: async () => {
    await redis?.close();
    redis = null;
  },
});

Deno.test("redis limiter: simultaneous requests report the headers the in-memory limiter gives them", async () => {
  redis ??= await startRedis();
  // A fixed clock at today's scale, where intervals summed onto it round differently than alone.
  const now = () => 1_764_000_123_457;
  const shared = createRedisLimiter({ url: redis.url, clock: now, timeoutMs: 1000 });
  await shared.ready(5000);
  try {
    for (const rpm of [7, 13, 17, 33, 700]) {
      const local = createMemoryLimiter(now);
      const l = { rpm, burst: 60, tpm: null, maxConcurrency: null };
      const key = `headers-${run}-${rpm}`;
      const together = await Promise.all([...Array(64).keys()].map(() => shared.admit(key, l)));
      for (const [i, decision] of together.entries()) {
        const alone = await local.admit(key, l);
        assertEquals(decision.ok, alone.ok, `rpm ${rpm}, request ${i}`);
        assertEquals(decision.state, alone.state, `rpm ${rpm}, request ${i}`);
      }
    }
  } finally {
    await shared.close();
  }
});
