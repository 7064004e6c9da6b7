import { assertEquals } from "../../tests/assert.ts";
import { Metrics } from "../metrics.ts";
import { countAttempts, watchRouter } from "./metrics.ts";
import type { BackendState, BackendView } from "./types.ts";

/** What the admin API would show of a backend, with the fields the gauges read set. */
function view(name: string, state: BackendState, inFlight: number): BackendView {
  return {
    name,
    type: "vllm",
    state,
    healthy: state === "healthy",
    in_flight: inFlight,
    max_concurrency: null,
    weight: 1,
    queued: 0,
    consecutive_failures: 0,
    ejected_until: null,
    last_error: null,
    models: [],
    recent: { requests: 0, errors: 0, p50_ms: null, p95_ms: null },
  };
}

/** The lines of a rendering that belong to one metric. */
const lines = (text: string, name: string) =>
  text.split("\n").filter((line) => line.startsWith(`${name}{`));

Deno.test("countAttempts() counts each backend's attempts by result", () => {
  const metrics = new Metrics();
  const count = countAttempts(metrics);
  count("a", "success");
  count("a", "upstream_error");
  count("b", "success");
  count("a", "success");
  assertEquals(lines(metrics.render(), "modelgate_backend_attempts_total"), [
    'modelgate_backend_attempts_total{backend="a",result="success"} 2',
    'modelgate_backend_attempts_total{backend="a",result="upstream_error"} 1',
    'modelgate_backend_attempts_total{backend="b",result="success"} 1',
  ]);
  assertEquals(
    metrics.value("modelgate_backend_attempts_total", { result: "success", backend: "a" }),
    2,
  );
});

Deno.test("watchRouter() takes one snapshot of the backends per scrape", () => {
  const metrics = new Metrics();
  let snapshots = 0;
  let inFlight = 1;
  watchRouter(metrics, {
    snapshot() {
      snapshots++;
      return [view("a", "healthy", inFlight), view("b", "ejected", 0)];
    },
    queueDepths: () => new Map([["m", inFlight]]),
  });
  const first = metrics.render();
  assertEquals(snapshots, 1);
  assertEquals(lines(first, "modelgate_backend_up"), [
    'modelgate_backend_up{backend="a"} 1',
    'modelgate_backend_up{backend="b"} 0',
  ]);
  assertEquals(lines(first, "modelgate_backend_in_flight"), [
    'modelgate_backend_in_flight{backend="a"} 1',
    'modelgate_backend_in_flight{backend="b"} 0',
  ]);
  inFlight = 3;
  const second = metrics.render();
  assertEquals(snapshots, 2);
  assertEquals(
    lines(second, "modelgate_backend_in_flight")[0],
    'modelgate_backend_in_flight{backend="a"} 3',
  );
  assertEquals(lines(second, "modelgate_queue_depth"), ['modelgate_queue_depth{model="m"} 3']);
});
