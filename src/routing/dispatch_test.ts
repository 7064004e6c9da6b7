import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { ManualClock } from "../../tests/fakes/manual_clock.ts";
import { backendConfig, configAdapter } from "../../tests/fakes/config_adapter.ts";
import type { Strategy } from "../config.ts";
import { GatewayError, invalidRequest, upstreamError } from "../errors.ts";
import { Backend } from "./backend.ts";
import { Dispatcher } from "./dispatch.ts";
import { Health } from "./health.ts";
import type { GroupPolicy, Tier } from "./policy.ts";
import type { Routed, Target } from "./types.ts";

interface Spec {
  name: string;
  max?: number;
  weight?: number;
}

function fleet(
  specs: Spec[],
  options: { strategy?: Strategy; retries?: number; maxQueue?: number; random?: number[] } = {},
) {
  const clock = new ManualClock();
  const backends = new Map(specs.map((spec) => [
    spec.name,
    new Backend(
      configAdapter(
        backendConfig(spec.name, {
          models: ["m"],
          weight: spec.weight ?? 1,
          maxConcurrency: spec.max ?? 0,
        }),
      ),
      new Health({ failuresToEject: 2, ejectMs: 10_000, now: () => clock.now() }),
    ),
  ]));
  const draws = [...(options.random ?? [])];
  const dispatcher = new Dispatcher({
    backends,
    strategy: options.strategy ?? "least_busy",
    retries: options.retries ?? 2,
    maxQueue: options.maxQueue ?? 100,
    clock,
    random: () => draws.shift() ?? 0,
  });
  return { clock, backends, dispatcher };
}

const group = (rank = 1, maxQueueMs = 60_000): GroupPolicy => ({
  name: ["high", "normal", "low"][rank],
  rank,
  maxQueueMs,
  allowed: null,
  aliases: {},
  fallbacks: {},
});

const tier = (model: string, ...backends: string[]): Tier => ({ model, backends });

/** An attempt that answers at once with the backend's name. */
const answer = (target: Target) => Promise.resolve(target.adapter.config.name);

/** A request to route, with the progress it fills in. */
const request = (signal = new AbortController().signal) => ({
  model: "m",
  signal,
  progress: { attempts: 0, queuedMs: 0 },
});

/** Lets queued promise callbacks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Dispatcher least_busy picks the lowest in-flight share of max_concurrency, never beyond it", async () => {
  const { dispatcher, backends } = fleet([{ name: "a", max: 4 }, { name: "b", max: 2 }]);
  const held: Routed<string>[] = [];
  for (let i = 0; i < 6; i++) {
    held.push(await dispatcher.route([tier("m", "a", "b")], group(), request(), answer));
  }
  // Shares: a 0/4 b 0/2 (tie: a), b, a (.25<.5), tie at .5 (a), b (.5<.75), a.
  assertEquals(held.map((r) => r.value), ["a", "b", "a", "a", "b", "a"]);
  assertEquals([backends.get("a")!.inFlight, backends.get("b")!.inFlight], [4, 2]);
  // Both full: the next one waits, and takes the first slot that frees.
  const waiting = dispatcher.route([tier("m", "a", "b")], group(), request(), answer);
  await settle();
  assertEquals(dispatcher.queued("m"), 1);
  held[1].release({ failed: false, latencyMs: 5 });
  assertEquals((await waiting).value, "b");
  assertEquals(backends.get("b")!.inFlight, 2, "the freed slot went to the waiter, not back");
});

Deno.test("Dispatcher weighted picks at random by weight, as before", async () => {
  const { dispatcher } = fleet([{ name: "a", weight: 3 }, { name: "b", weight: 1 }], {
    strategy: "weighted",
    random: [0.1, 0.8, 0.74, 0.76],
  });
  const picks: string[] = [];
  for (let i = 0; i < 4; i++) {
    picks.push((await dispatcher.route([tier("m", "a", "b")], group(), request(), answer)).value);
  }
  assertEquals(picks, ["a", "b", "a", "b"]);
});

Deno.test("Dispatcher serves a full backend's queue by priority, then arrival", async () => {
  const { dispatcher } = fleet([{ name: "a", max: 1 }]);
  const first = await dispatcher.route([tier("m", "a")], group(), request(), answer);
  const order: string[] = [];
  const enqueue = (label: string, rank: number) =>
    dispatcher.route([tier("m", "a")], group(rank), request(), (t) => {
      order.push(label);
      return answer(t);
    });
  const queued = [
    enqueue("low-1", 2),
    enqueue("normal-1", 1),
    enqueue("low-2", 2),
    enqueue("high-1", 0),
  ];
  await settle();
  assertEquals(dispatcher.queued("m"), 4);
  let current = first;
  for (let i = 0; i < 4; i++) {
    current.release({ failed: false, latencyMs: 1 });
    current = await Promise.race(queued.filter((_, j) => !order.includes(labelOf(j))));
  }
  assertEquals(order, ["high-1", "normal-1", "low-1", "low-2"]);

  function labelOf(index: number) {
    return ["low-1", "normal-1", "low-2", "high-1"][index];
  }
});

Deno.test("Dispatcher: a waiter whose client leaves is gone at once and takes nothing", async () => {
  const { dispatcher, backends } = fleet([{ name: "a", max: 1 }]);
  const first = await dispatcher.route([tier("m", "a")], group(), request(), answer);
  const leaving = new AbortController();
  const gone = dispatcher.route([tier("m", "a")], group(), request(leaving.signal), answer);
  const staying = dispatcher.route([tier("m", "a")], group(), request(), answer);
  await settle();
  assertEquals(dispatcher.queued("m"), 2);
  leaving.abort();
  const err = await assertRejects(() => gone, GatewayError);
  assertEquals((err as GatewayError).status, 499);
  assertEquals(dispatcher.queued("m"), 1);
  first.release({ failed: false, latencyMs: 1 });
  await staying;
  assertEquals(backends.get("a")!.inFlight, 1);
  assertEquals(dispatcher.queued("m"), 0);
});

Deno.test("Dispatcher: when the group's wait ends the request moves to the next tier", async () => {
  const { dispatcher, clock } = fleet([{ name: "a", max: 1 }, { name: "cloud" }]);
  const plan = [tier("m", "a"), tier("fallback", "cloud")];
  await dispatcher.route(plan, group(), request(), answer);
  // A group that never waits spills over at once.
  const hurried = request();
  const spilled = await dispatcher.route(plan, group(0, 0), hurried, answer);
  assertEquals([spilled.value, spilled.target.model, hurried.progress.queuedMs], [
    "cloud",
    "fallback",
    0,
  ]);
  // A group that waits a minute stays queued until the minute is over.
  const waiting = request();
  const patient = dispatcher.route(plan, group(2, 60_000), waiting, answer);
  await settle();
  clock.advance(59_999);
  await settle();
  assertEquals(dispatcher.queued("m"), 1);
  clock.advance(1);
  const routed = await patient;
  assertEquals([routed.value, waiting.progress.queuedMs], ["cloud", 60_000]);
});

Deno.test("Dispatcher: a full queue moves on at once; nothing left is 503 with Retry-After", async () => {
  const { dispatcher } = fleet([{ name: "a", max: 1 }], { maxQueue: 1 });
  await dispatcher.route([tier("m", "a")], group(), request(), answer);
  const waiting = dispatcher.route([tier("m", "a")], group(), request(), answer);
  await settle();
  const err = await assertRejects(
    () => dispatcher.route([tier("m", "a")], group(), request(), answer),
    GatewayError,
  ) as GatewayError;
  assertEquals([err.status, err.code, err.headers["retry-after"]], [
    503,
    "no_backend_available",
    "1",
  ]);
  assertEquals(dispatcher.queued("m"), 1);
  waiting.catch(() => {});
});

Deno.test("Dispatcher fails over on upstream errors and the backend's 429, never on a client's 4xx", async () => {
  const { dispatcher, backends } = fleet([{ name: "a" }, { name: "b" }], { random: [0, 0, 0] });
  const tried: string[] = [];
  const flaky = (fail: (name: string) => GatewayError | null) => (target: Target) => {
    const name = target.adapter.config.name;
    tried.push(name);
    const error = fail(name);
    return error ? Promise.reject(error) : Promise.resolve(name);
  };
  const first = request();
  const routed = await dispatcher.route(
    [tier("m", "a", "b")],
    group(),
    first,
    flaky((n) => (n === "a" ? upstreamError("down") : null)),
  );
  assertEquals([routed.value, first.progress.attempts, tried], ["b", 2, ["a", "b"]]);
  assertEquals(backends.get("a")!.health.consecutiveFailures, 1);
  assertEquals(backends.get("a")!.inFlight, 0);

  tried.length = 0;
  const limited = new GatewayError("slow down", {
    status: 429,
    type: "rate_limit_error",
    code: "rate_limit_exceeded",
  });
  const second = request();
  await dispatcher.route(
    [tier("m", "a", "b")],
    group(),
    second,
    flaky((n) => (n === tried[0] && tried.length === 1 ? limited : null)),
  );
  assertEquals([second.progress.attempts, tried.length], [2, 2]);

  tried.length = 0;
  const err = await assertRejects(
    () =>
      dispatcher.route(
        [tier("m", "a", "b")],
        group(),
        request(),
        flaky(() => invalidRequest("no")),
      ),
    GatewayError,
  ) as GatewayError;
  assertEquals([err.status, tried.length], [400, 1]);
});

Deno.test("Dispatcher tries at most 1 + retries backends per tier, then throws the last error", async () => {
  const { dispatcher, backends } = fleet(
    [{ name: "a" }, { name: "b" }, { name: "c" }],
    { retries: 1 },
  );
  const failing = request();
  const err = await assertRejects(
    () =>
      dispatcher.route(
        [tier("m", "a", "b", "c")],
        group(),
        failing,
        (t) => Promise.reject(upstreamError(`"${t.adapter.config.name}" is down`)),
      ),
    GatewayError,
  ) as GatewayError;
  assertEquals([err.status, err.code, failing.progress.attempts], [502, "upstream_error", 2]);
  assertEquals([...backends.values()].map((b) => b.inFlight), [0, 0, 0]);
});

Deno.test("Dispatcher skips ejected backends; all ejected is 503 with Retry-After until the first returns", async () => {
  const { dispatcher, backends, clock } = fleet([{ name: "a" }, { name: "b" }]);
  dispatcher.failure(backends.get("a")!, "down");
  dispatcher.failure(backends.get("a")!, "down");
  assertEquals(backends.get("a")!.health.state, "ejected");
  for (let i = 0; i < 5; i++) {
    const routed = await dispatcher.route([tier("m", "a", "b")], group(), request(), answer);
    assertEquals(routed.value, "b");
    routed.release({ failed: false, latencyMs: 1 });
  }
  clock.advance(4000);
  dispatcher.failure(backends.get("b")!, "down", true);
  const err = await assertRejects(
    () => dispatcher.route([tier("m", "a", "b")], group(), request(), answer),
    GatewayError,
  ) as GatewayError;
  assertEquals([err.status, err.headers["retry-after"]], [503, "6"]);
});

Deno.test("Dispatcher: an ejection sends waiters with no usable candidate to their next tier at once", async () => {
  const { dispatcher, backends } = fleet([{ name: "a", max: 1 }, { name: "cloud" }]);
  const plan = [tier("m", "a"), tier("fallback", "cloud")];
  const holding = await dispatcher.route(plan, group(), request(), answer);
  const waiting = dispatcher.route(plan, group(), request(), answer);
  await settle();
  assertEquals(dispatcher.queued("m"), 1);
  dispatcher.failure(backends.get("a")!, "probe failed", true);
  assertEquals((await waiting).value, "cloud");
  holding.release({ failed: false, latencyMs: 1 });
  assertEquals(backends.get("a")!.inFlight, 0);
});

Deno.test("Dispatcher: release() twice frees one slot; failures after the first byte never eject", async () => {
  const { dispatcher, backends } = fleet([{ name: "a", max: 2 }]);
  const one = await dispatcher.route([tier("m", "a")], group(), request(), answer);
  await dispatcher.route([tier("m", "a")], group(), request(), answer);
  for (let i = 0; i < 5; i++) one.release({ failed: true, latencyMs: 3 });
  const a = backends.get("a")!;
  assertEquals(a.inFlight, 1);
  assertEquals(a.health.consecutiveFailures, 0);
  assertEquals(a.recent.snapshot().errors, 1);
  assert(a.health.state === "healthy");
});
