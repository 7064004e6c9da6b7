import { assert, assertEquals } from "../assert.ts";
import { silentLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { createRateLimiter } from "../../src/ratelimit/resilient.ts";
import { startRedis } from "../fakes/redis_server.ts";

const limits = { rpm: 60, burst: 2, tpm: null, maxConcurrency: null };

for (const onError of ["local", "open", "closed"] as const) {
  Deno.test(`resilient limiter: with Redis killed, on_error=${onError} holds and nothing hangs; shared limits return`, async () => {
    const redis = await startRedis();
    const metrics = new Metrics();
    const limiter = createRateLimiter({
      redisUrl: redis.url,
      onError,
      log: silentLogger,
      metrics,
      timeoutMs: 200,
    });
    try {
      await limiter.ready!(5000);
      assert((await limiter.admit("k", limits)).ok);
      assert((await limiter.admit("k", limits)).ok);
      assert(!(await limiter.admit("k", limits)).ok, "shared limit holds while Redis is up");

      await redis.stop();
      const started = performance.now();
      const during = [];
      for (let i = 0; i < 4; i++) during.push(await limiter.admit("k", limits));
      const elapsed = performance.now() - started;
      assert(elapsed < 2000, `checks took ${elapsed} ms while Redis was down`);
      const admitted = during.filter((d) => d.ok).length;
      if (onError === "local") {
        assertEquals(admitted, 2, "local fallback applies the limit in memory");
      }
      if (onError === "open") assertEquals(admitted, 4);
      if (onError === "closed") {
        assertEquals(admitted, 0);
        assertEquals(during.every((d) => !d.ok && d.reason === "unavailable"), true);
      }
      assert(metrics.value("modelgate_ratelimit_redis_failures_total", { mode: onError }) >= 4);

      await redis.start();
      await limiter.ready!(5000);
      // Redis restarted empty: the shared bucket is full again and holds once more.
      let back = 0;
      for (let i = 0; i < 50 && back === 0; i++) {
        const d = await limiter.admit("fresh", limits);
        if (d.ok) back++;
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assertEquals(back, 1);
      assert((await limiter.admit("fresh", limits)).ok);
      assert(
        !(await limiter.admit("fresh", limits)).ok,
        "shared limits enforced again after restart",
      );
    } finally {
      await limiter.close();
      await redis.close();
    }
  });
}
