/** What the router exposes at /metrics: backend health, slots and queues, and every attempt. */
import type { CounterSeries, Metrics } from "../metrics.ts";
import type { AttemptResult, BackendView, Router } from "./types.ts";

const ATTEMPTS = "modelgate_backend_attempts_total";

/** Describes the attempt counter and returns the callback that counts one attempt. */
export function countAttempts(metrics: Metrics): (backend: string, result: AttemptResult) => void {
  metrics.describe(ATTEMPTS, "Attempts sent to a backend, by result");
  const attempts = metrics.counter(ATTEMPTS, ["backend", "result"]);
  /** Each backend's series per result, found once: backends come from the config, results are few. */
  const series = new Map<string, Map<AttemptResult, CounterSeries>>();
  return function countAttempt(backend, result) {
    let byResult = series.get(backend);
    if (!byResult) series.set(backend, byResult = new Map());
    let counter = byResult.get(result);
    if (!counter) byResult.set(result, counter = attempts.with(backend, result));
    counter.inc();
  };
}

/** Registers the gauges read from the router at scrape time. */
export function watchRouter(
  metrics: Metrics,
  router: Pick<Router, "snapshot" | "queueDepths">,
): void {
  // One snapshot per scrape feeds both backend gauges (it sorts each backend's latencies).
  let backends: BackendView[] = [];
  metrics.onScrape(() => {
    backends = router.snapshot();
  });
  metrics.gauge(
    "modelgate_backend_up",
    "1 when the backend receives traffic, 0 while it is ejected",
    () => backends.map((b) => [{ backend: b.name }, b.state === "healthy" ? 1 : 0]),
  );
  metrics.gauge(
    "modelgate_backend_in_flight",
    "Requests holding a slot of the backend",
    () => backends.map((b) => [{ backend: b.name }, b.in_flight]),
  );
  metrics.gauge(
    "modelgate_queue_depth",
    "Requests waiting for a free backend slot, by model",
    () => [...router.queueDepths()].map(([model, depth]) => [{ model }, depth]),
  );
}
