import { assert, assertEquals } from "../../tests/assert.ts";
import { ManualClock } from "../../tests/fakes/manual_clock.ts";
import { Health, MAX_EJECT_MS } from "./health.ts";

function health(clock: ManualClock, failuresToEject = 3) {
  return new Health({ failuresToEject, ejectMs: 10_000, now: () => clock.now() });
}

Deno.test("Health ejects after failures_to_eject consecutive failures; a success in between resets", () => {
  const clock = new ManualClock();
  const h = health(clock);
  h.fail("a");
  h.fail("b");
  h.succeed();
  h.fail("c");
  h.fail("d");
  assertEquals(h.state, "healthy");
  assertEquals(h.fail("e").ejectedMs, 10_000);
  assertEquals(h.state, "ejected");
  assertEquals(h.ejectedUntil, clock.now() + 10_000);
  assertEquals(h.lastError, "e");
  assertEquals(h.consecutiveFailures, 3);
});

Deno.test("Health doubles the ejection on each repeat up to 300 s, one failure after expiry re-ejects", () => {
  const clock = new ManualClock();
  const h = health(clock);
  for (let i = 0; i < 3; i++) h.fail("down");
  const seen: number[] = [10_000];
  for (let i = 0; i < 6; i++) {
    clock.advance(h.ejectedUntil! - clock.now());
    assertEquals(h.state, "healthy", "an ejection runs out by itself");
    // Still failing: the very next failure ejects again, for twice as long.
    const { ejectedMs } = h.fail("still down");
    assert(ejectedMs !== null);
    seen.push(ejectedMs);
  }
  assertEquals(seen, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
});

Deno.test("Health: failures while ejected do not lengthen it; a success readmits at once", () => {
  const clock = new ManualClock();
  const h = health(clock, 1);
  h.fail("down");
  const until = h.ejectedUntil;
  clock.advance(1000);
  assertEquals(h.fail("late answer of an old request").ejectedMs, null);
  assertEquals(h.ejectedUntil, until);
  assertEquals(h.succeed(), true);
  assertEquals(h.state, "healthy");
  assertEquals(h.consecutiveFailures, 0);
  assertEquals(h.succeed(), false, "readmits only once");
});

Deno.test("Health starts again at the base ejection after 300 s without one", () => {
  const clock = new ManualClock();
  const h = health(clock, 1);
  h.fail("down");
  h.succeed();
  clock.advance(1000);
  assertEquals(h.fail("down again soon").ejectedMs, 20_000);
  h.succeed();
  clock.advance(MAX_EJECT_MS);
  assertEquals(h.fail("down much later").ejectedMs, 10_000);
});

Deno.test("Health ejects at once when told the backend never answered", () => {
  const clock = new ManualClock();
  const h = health(clock);
  assertEquals(h.fail("unreachable at start", true).ejectedMs, 10_000);
  assertEquals(h.state, "ejected");
});
