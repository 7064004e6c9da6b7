/** Per-request metrics and the access log line, written when an exchange finishes. */
import type { Step } from "../pipeline/step.ts";
import type { Logger } from "../log.ts";
import type { CounterSeries, HistogramSeries, Metrics } from "../metrics.ts";
import type { Completion } from "../context.ts";

/** Describes the metrics this module writes. */
export function describeRequestMetrics(metrics: Metrics): void {
  metrics.describe("modelgate_requests_total", "Requests that reached routing, by outcome");
  metrics.describe("modelgate_tokens_total", "Tokens metered, by kind");
  metrics.describe("modelgate_errors_total", "Error responses, by status and code");
  metrics.describe("modelgate_request_duration_ms", "Request latency until the last byte");
  metrics.describe("modelgate_time_to_first_token_ms", "Time to the first streamed token");
  metrics.describe("modelgate_auth_failures_total", "Refused API keys, by reason (never the key)");
  // Prometheus' conventional process gauges, read at scrape time.
  metrics.gauge(
    "process_resident_memory_bytes",
    "Resident memory of the gateway process",
    () => Deno.memoryUsage().rss,
  );
  metrics.gauge(
    "modelgate_js_heap_used_bytes",
    "JavaScript heap in use (what the gateway itself keeps alive)",
    () => Deno.memoryUsage().heapUsed,
  );
}

/** Registers the finisher that counts and logs each proxied request. */
export function observeStep(metrics: Metrics, log: Logger): Step {
  const requests = metrics.counter("modelgate_requests_total", [
    "endpoint",
    "backend",
    "outcome",
    "status",
  ]);
  const tokens = metrics.counter("modelgate_tokens_total", [
    "endpoint",
    "backend",
    "outcome",
    "kind",
  ]);
  const duration = metrics.histogram("modelgate_request_duration_ms", ["endpoint"]);
  const ttft = metrics.histogram("modelgate_time_to_first_token_ms", ["endpoint"]);
  /** The series of one combination of labels, found once (label values repeat). */
  const seriesOf = new Map<string, Series>();
  const series = (done: Completion & { endpoint: string }): Series => {
    const backend = done.backend ?? "";
    const id = `${done.endpoint}\u0000${backend}\u0000${done.outcome}\u0000${done.status}`;
    let found = seriesOf.get(id);
    if (!found) {
      found = {
        requests: requests.with(done.endpoint, backend, done.outcome, String(done.status)),
        prompt: tokens.with(done.endpoint, backend, done.outcome, "prompt"),
        completion: tokens.with(done.endpoint, backend, done.outcome, "completion"),
        duration: duration.with(done.endpoint),
        ttft: ttft.with(done.endpoint),
      };
      // Label values come from the config and a few closed sets: the map stays small.
      if (seriesOf.size < 10_000) seriesOf.set(id, found);
    }
    return found;
  };
  // One finisher for every request: it reads only the completion, so an open stream keeps
  // nothing of its request alive through it.
  const record = (done: Completion): void => {
    if (done.endpoint === null) return;
    const s = series(done as Completion & { endpoint: string });
    s.requests.inc(1);
    s.prompt.inc(done.usage.prompt_tokens);
    s.completion.inc(done.usage.completion_tokens);
    s.duration.observe(done.latencyMs);
    if (done.ttftMs !== null) s.ttft.observe(done.ttftMs);
    log.info("request", {
      request_id: done.requestId,
      key_id: done.keyId ?? undefined,
      endpoint: done.endpoint,
      model: done.model,
      backend: done.backend,
      stream: done.stream,
      status: done.status,
      outcome: done.outcome,
      prompt_tokens: done.usage.prompt_tokens,
      completion_tokens: done.usage.completion_tokens,
      latency_ms: Math.round(done.latencyMs),
      ttft_ms: done.ttftMs === null ? null : Math.round(done.ttftMs),
      client_ip: done.clientIp,
    });
  };
  return function observe(c) {
    c.get("exchange").finishers.push(record);
  };
}

interface Series {
  requests: CounterSeries;
  prompt: CounterSeries;
  completion: CounterSeries;
  duration: HistogramSeries;
  ttft: HistogramSeries;
}
