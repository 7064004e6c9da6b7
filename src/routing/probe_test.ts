import { assert, assertEquals } from "../../tests/assert.ts";
import { ManualClock } from "../../tests/fakes/manual_clock.ts";
import type { UpstreamModel } from "../../adapters/types.ts";
import { backendConfig, configAdapter } from "../../tests/fakes/config_adapter.ts";
import { GatewayError } from "../errors.ts";
import { Prober, type ProbeResult } from "./probe.ts";

/** An adapter whose model list is whatever the test's function answers. */
function adapter(name: string, list: (signal?: AbortSignal) => Promise<UpstreamModel[]>) {
  return configAdapter(backendConfig(name), list);
}

/** A list call that only ends when its signal aborts. */
function hanging(signal?: AbortSignal): Promise<UpstreamModel[]> {
  return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Prober probes every target at start, then once per interval", async () => {
  const clock = new ManualClock();
  const seen: string[] = [];
  let calls = 0;
  const up = adapter("up", () => {
    calls++;
    return Promise.resolve([{ id: "m" }]);
  });
  const down = adapter("down", () => Promise.reject(new Error("refused")));
  const prober = new Prober({
    targets: [up, down],
    intervalMs: 5000,
    timeoutMs: 2000,
    clock,
    onResult(a, result: ProbeResult) {
      seen.push(`${a.config.name}:${result.ok ? "ok" : "failed"}`);
    },
  });
  await prober.start();
  assertEquals(seen.sort(), ["down:failed", "up:ok"]);
  clock.advance(4999);
  await settle();
  assertEquals(calls, 1);
  clock.advance(1);
  await settle();
  assertEquals(calls, 2);
  assertEquals(seen.sort(), ["down:failed", "down:failed", "up:ok", "up:ok"]);
  await prober.stop();
  clock.advance(60_000);
  await settle();
  assertEquals(calls, 2, "no probe after stop()");
});

Deno.test("Prober never starts a round while one runs; the next comes intervalMs after it ends", async () => {
  const clock = new ManualClock();
  let calls = 0;
  let release = () => {};
  const slow = adapter("slow", () => {
    calls++;
    // The first round answers at once; the second hangs until the test releases it.
    if (calls !== 2) return Promise.resolve([{ id: "m" }]);
    return new Promise((resolve) => (release = () => resolve([{ id: "m" }])));
  });
  let results = 0;
  const prober = new Prober({
    targets: [slow],
    intervalMs: 5000,
    timeoutMs: 60_000,
    clock,
    onResult() {
      results++;
    },
  });
  await prober.start();
  clock.advance(5000);
  await settle();
  assertEquals([calls, results], [2, 1], "the second round is running");
  // Ticks that would have come while it runs start nothing.
  clock.advance(5000);
  await settle();
  clock.advance(20_000);
  await settle();
  assertEquals([calls, results], [2, 1]);
  release();
  await settle();
  assertEquals([calls, results], [2, 2]);
  clock.advance(4999);
  await settle();
  assertEquals(calls, 2);
  clock.advance(1);
  await settle();
  assertEquals([calls, results], [3, 3]);
  await prober.stop();
});

Deno.test("Prober ends a probe that hangs after timeoutMs with upstream_timeout", async () => {
  const clock = new ManualClock();
  let result: ProbeResult | null = null;
  const prober = new Prober({
    targets: [adapter("stuck", hanging)],
    intervalMs: 0,
    timeoutMs: 2000,
    clock,
    onResult(_a, r) {
      result = r;
    },
  });
  const started = prober.start();
  await settle();
  assertEquals(result, null);
  clock.advance(2000);
  await started;
  const failed = result as ProbeResult | null;
  assert(failed && !failed.ok);
  assert(failed.error instanceof GatewayError);
  assertEquals(failed.error.code, "upstream_timeout");
  assertEquals(clock.pending, 0, "interval 0: no next round");
});

Deno.test("Prober.stop() aborts probes in flight and waits for them", async () => {
  const clock = new ManualClock();
  let aborted = false;
  const prober = new Prober({
    targets: [
      adapter("stuck", (signal) => {
        signal?.addEventListener("abort", () => (aborted = true));
        return hanging(signal);
      }),
    ],
    intervalMs: 1000,
    timeoutMs: 60_000,
    clock,
    onResult() {
      throw new Error("results after stop() are dropped");
    },
  });
  const started = prober.start();
  await settle();
  await prober.stop();
  await started;
  assert(aborted);
  assertEquals(clock.pending, 0);
});
