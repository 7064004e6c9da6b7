import { assert, assertEquals } from "../assert.ts";
import { createRedisLimiter } from "../../src/ratelimit/redis.ts";
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

Deno.test("redis limiter: two instances sharing one Redis enforce one combined limit", async () => {
  redis ??= await startRedis();
  const one = createRedisLimiter({ url: redis.url, timeoutMs: 1000 });
  const two = createRedisLimiter({ url: redis.url, timeoutMs: 1000 });
  await Promise.all([one.ready(5000), two.ready(5000)]);
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

Deno.test({
  name: "redis limiter: (cleanup) stop the shared redis-server",
  fn: async () => {
    await redis?.close();
    redis = null;
  },
});
