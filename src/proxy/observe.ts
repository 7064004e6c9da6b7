/** Per-request metrics and the access log line, written when an exchange finishes. */
import type { Step } from "../pipeline/step.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";

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
  return function observe(c) {
    c.get("exchange").finishers.push((done) => {
      if (done.endpoint === null) return;
      const labels = {
        endpoint: done.endpoint,
        backend: done.backend ?? "",
        outcome: done.outcome,
      };
      metrics.inc("modelgate_requests_total", { ...labels, status: String(done.status) });
      metrics.inc(
        "modelgate_tokens_total",
        { ...labels, kind: "prompt" },
        done.usage.prompt_tokens,
      );
      metrics.inc(
        "modelgate_tokens_total",
        { ...labels, kind: "completion" },
        done.usage.completion_tokens,
      );
      metrics.observe("modelgate_request_duration_ms", { endpoint: done.endpoint }, done.latencyMs);
      if (done.ttftMs !== null) {
        metrics.observe(
          "modelgate_time_to_first_token_ms",
          { endpoint: done.endpoint },
          done.ttftMs,
        );
      }
      log.info("request", {
        request_id: done.requestId,
        key_id: c.get("key")?.id,
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
    });
  };
}
