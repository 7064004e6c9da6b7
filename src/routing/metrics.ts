/** What the router exposes at /metrics: backend health, slots and queues, and every attempt. */
import type { Metrics } from "../metrics.ts";
import type { AttemptResult, Router } from "./types.ts";

const ATTEMPTS = "modelgate_backend_attempts_total";

/** Describes the attempt counter and returns the callback that counts one attempt. */
export function countAttempts(metrics: Metrics): (backend: string, result: AttemptResult) => void {
  metrics.describe(ATTEMPTS, "Attempts sent to a backend, by result");
  return function countAttempt(backend, result) {
    metrics.inc(ATTEMPTS, { backend, result });
  };
}

/** Registers the gauges read from the router at scrape time. */
export function watchRouter(metrics: Metrics, router: Router): void {
  metrics.gauge(
    "modelgate_backend_up",
    "1 when the backend receives traffic, 0 while it is ejected",
    () => router.snapshot().map((b) => [{ backend: b.name }, b.state === "healthy" ? 1 : 0]),
  );
  metrics.gauge(
    "modelgate_backend_in_flight",
    "Requests holding a slot of the backend",
    () => router.snapshot().map((b) => [{ backend: b.name }, b.in_flight]),
  );
  metrics.gauge(
    "modelgate_queue_depth",
    "Requests waiting for a free backend slot, by model",
    () => [...router.queueDepths()].map(([model, depth]) => [{ model }, depth]),
  );
}
