import { assertEquals } from "../tests/assert.ts";
import { type DeadlineClock, Deadlines } from "./deadlines.ts";

/** A clock whose timers run only when the test moves time forward. */
function manualClock() {
  let now = 0;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: DeadlineClock = {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, timer] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at <= now && timers.has(id)) {
        timers.delete(id);
        timer.fn();
      }
    }
  };
  return { clock, advance, timers };
}

Deno.test("Deadlines: fire in order at their time; cancelled ones never fire", () => {
  const { clock, advance } = manualClock();
  const deadlines = new Deadlines(clock);
  const fired: string[] = [];
  deadlines.after(100, () => fired.push("a"));
  advance(30);
  const b = deadlines.after(100, () => fired.push("b"));
  advance(30);
  deadlines.after(100, () => fired.push("c"));
  deadlines.after(10, () => fired.push("short"));
  b.cancel();
  advance(15);
  assertEquals(fired, ["short"]);
  advance(30);
  assertEquals(fired, ["short", "a"]);
  advance(60);
  assertEquals(fired, ["short", "a", "c"]);
  assertEquals(deadlines.pending, 0);
});

Deno.test("Deadlines: one timer per duration for any number of deadlines; cancelled ones are dropped", () => {
  const { clock, advance, timers } = manualClock();
  const deadlines = new Deadlines(clock);
  const handles = [];
  for (let i = 0; i < 10_000; i++) {
    handles.push(deadlines.after(5000, () => {
      throw new Error("cancelled deadline fired");
    }));
  }
  assertEquals(timers.size, 1);
  for (const handle of handles) handle.cancel();
  assertEquals(deadlines.pending, 0);
  const fired: number[] = [];
  advance(2000);
  deadlines.after(5000, () => fired.push(1));
  assertEquals(timers.size, 1, "still one timer");
  advance(3000);
  assertEquals(fired, [], "the first wake finds it not yet due");
  advance(2000);
  assertEquals(fired, [1]);
  advance(50_000);
  assertEquals(timers.size, 0, "no timer re-armed once nothing is pending");
});
