/** One contract suite every rate limiter passes, with an injected clock (no sleeping). */
import { assert, assertEquals } from "../assert.ts";
import type { RateLimiter, RateLimits } from "../../src/ratelimit/types.ts";

/** Builds a limiter reading the given clock. */
export type MakeLimiter = (clock: () => number) => Promise<RateLimiter>;

const limits = (partial: Partial<RateLimits>): RateLimits => ({
  rpm: null,
  burst: null,
  tpm: null,
  maxConcurrency: null,
  ...partial,
});

/** Registers the contract tests for one implementation. */
export function testRateLimiter(name: string, make: MakeLimiter): void {
  const withLimiter = (
    title: string,
    fn: (limiter: RateLimiter, clock: { t: number }) => Promise<void>,
  ) =>
    Deno.test(`${name}: ${title}`, async () => {
      const clock = { t: 1_700_000_000_000 };
      const limiter = await make(() => clock.t);
      try {
        await fn(limiter, clock);
      } finally {
        await limiter.close();
      }
    });

  withLimiter("admits a burst, then refuses with a retry time", async (limiter) => {
    const l = limits({ rpm: 60, burst: 3 });
    for (let i = 0; i < 3; i++) {
      const decision = await limiter.admit("k", l);
      assert(decision.ok);
      assertEquals(decision.state.remainingRequests, 2 - i);
      await decision.lease.release(0);
    }
    const refused = await limiter.admit("k", l);
    assert(!refused.ok);
    assertEquals(refused.reason, "rpm");
    assertEquals(refused.retryAfterMs, 1000);
    assertEquals(refused.state.remainingRequests, 0);
    assertEquals(refused.state.limitRequests, 60);
  });

  withLimiter(
    "refills at rpm/60 per second; refused requests consume nothing",
    async (limiter, clock) => {
      const l = limits({ rpm: 60, burst: 1 });
      assert((await limiter.admit("k", l)).ok);
      for (let i = 0; i < 5; i++) assert(!(await limiter.admit("k", l)).ok);
      clock.t += 999;
      assert(!(await limiter.admit("k", l)).ok);
      clock.t += 1;
      // A client that waited as told gets through, despite the refusals before.
      assert((await limiter.admit("k", l)).ok);
      clock.t += 3000;
      assert((await limiter.admit("k", l)).ok);
      assert(!(await limiter.admit("k", l)).ok, "the bucket holds at most burst");
    },
  );

  withLimiter("keys are limited separately", async (limiter) => {
    const l = limits({ rpm: 1, burst: 1 });
    assert((await limiter.admit("a", l)).ok);
    assert(!(await limiter.admit("a", l)).ok);
    assert((await limiter.admit("b", l)).ok);
  });

  withLimiter(
    "tpm is debited with real usage and refuses when spent, then refills",
    async (limiter, clock) => {
      const l = limits({ tpm: 600 });
      const first = await limiter.admit("k", l);
      assert(first.ok);
      assertEquals(first.state.remainingTokens, 600);
      await first.lease.release(600);
      const spent = await limiter.admit("k", l);
      assert(!spent.ok);
      assertEquals(spent.reason, "tpm");
      assertEquals(spent.state.remainingTokens, 0);
      assertEquals(spent.retryAfterMs, 100);
      clock.t += 100;
      const refilled = await limiter.admit("k", l);
      assert(refilled.ok);
      await refilled.lease.release(5);
    },
  );

  withLimiter(
    "concurrency slots are released on end, error and cancel, once each",
    async (limiter) => {
      const l = limits({ maxConcurrency: 2 });
      const a = await limiter.admit("k", l);
      const b = await limiter.admit("k", l);
      assert(a.ok && b.ok);
      const c = await limiter.admit("k", l);
      assert(!c.ok);
      assertEquals(c.reason, "concurrency");
      await a.lease.release(10);
      await a.lease.release(10); // a second release (e.g. from a finally) changes nothing
      const d = await limiter.admit("k", l);
      assert(d.ok);
      assert(!(await limiter.admit("k", l)).ok, "the double release did not free an extra slot");
      await b.lease.release(0);
      await d.lease.release(0);
    },
  );

  withLimiter(
    "200 simultaneous requests against rpm=60 burst=10 admit exactly 10",
    async (limiter) => {
      const l = limits({ rpm: 60, burst: 10 });
      const decisions = await Promise.all([...Array(200).keys()].map(() => limiter.admit("k", l)));
      assertEquals(decisions.filter((d) => d.ok).length, 10);
    },
  );

  withLimiter(
    "what a finished request gives back counts for the next admission, even a refused one",
    async (limiter) => {
      const l = limits({ tpm: 100, maxConcurrency: 1 });
      const a = await limiter.admit("k", l);
      assert(a.ok);
      const busy = await limiter.admit("k", l);
      assert(!busy.ok && busy.reason === "concurrency");
      await a.lease.release(100);
      const spent = await limiter.admit("k", l);
      assert(!spent.ok, "the slot is free again but the tokens are spent");
      assertEquals(spent.reason, "tpm");
      assertEquals(spent.state.remainingTokens, 0);
    },
  );

  withLimiter(
    "simultaneous requests are checked one by one: concurrency and tokens hold exactly",
    async (limiter) => {
      const slots = limits({ maxConcurrency: 5 });
      const first = await Promise.all([...Array(50).keys()].map(() => limiter.admit("c", slots)));
      assertEquals(first.filter((d) => d.ok).length, 5);
      for (const d of first) if (d.ok) await d.lease.release(0);
      const again = await Promise.all([...Array(50).keys()].map(() => limiter.admit("c", slots)));
      assertEquals(again.filter((d) => d.ok).length, 5, "released slots are free again");
      for (const d of again) if (d.ok) await d.lease.release(0);
      // Different limits for one key in the same moment (a key edited meanwhile) stay apart.
      const mixed = await Promise.all([
        limiter.admit("m", limits({ maxConcurrency: 1 })),
        limiter.admit("m", limits({ maxConcurrency: 2 })),
        limiter.admit("m", limits({ maxConcurrency: 1 })),
      ]);
      assertEquals(mixed.map((d) => d.ok), [true, true, false]);
    },
  );

  withLimiter(
    "simultaneous requests each report the budget they left, as if checked alone",
    async (limiter) => {
      const l = limits({ rpm: 60, burst: 3, tpm: 1000 });
      const decisions = await Promise.all([...Array(5).keys()].map(() => limiter.admit("s", l)));
      assertEquals(decisions.map((d) => d.ok), [true, true, true, false, false]);
      assertEquals(decisions.map((d) => d.state.remainingRequests), [2, 1, 0, 0, 0]);
      assertEquals(decisions.map((d) => d.state.remainingTokens), [1000, 1000, 1000, 1000, 1000]);
      for (const d of decisions.slice(3)) {
        assert(!d.ok && d.reason === "rpm" && d.retryAfterMs > 0, JSON.stringify(d));
      }
    },
  );

  withLimiter("unlimited keys are always admitted without state", async (limiter) => {
    const decision = await limiter.admit("k", limits({}));
    assert(decision.ok);
    assertEquals(decision.state.limitRequests, null);
  });
}
