/**
 * What finished requests cost in metrics: `deno bench src/metrics_bench.ts`. Each iteration is
 * 100 requests making the calls the proxy makes per request: three labelled counters and two
 * histograms, through inc()/observe() and through series kept by the caller.
 */
import { Metrics } from "./metrics.ts";

const endpoints = ["chat", "completions", "embeddings"];
const statuses = ["200", "200", "200", "429"];

const byLabels = new Metrics();
Deno.bench("Metrics: 100 requests' counters and histograms through inc()/observe()", () => {
  for (let i = 0; i < 100; i++) {
    const labels = { endpoint: endpoints[i % 3], backend: "vllm-a", outcome: "completed" };
    byLabels.inc("modelgate_requests_total", { ...labels, status: statuses[i % 4] });
    byLabels.inc("modelgate_tokens_total", { ...labels, kind: "prompt" }, 100);
    byLabels.inc("modelgate_tokens_total", { ...labels, kind: "completion" }, 20);
    byLabels.observe("modelgate_request_duration_ms", { endpoint: labels.endpoint }, 3 + i);
    byLabels.observe("modelgate_time_to_first_token_ms", { endpoint: labels.endpoint }, 1 + i);
  }
});

const kept = new Metrics();
const requests = kept.counter("modelgate_requests_total", [
  "endpoint",
  "backend",
  "outcome",
  "status",
]);
const tokens = kept.counter("modelgate_tokens_total", ["endpoint", "backend", "outcome", "kind"]);
const duration = kept.histogram("modelgate_request_duration_ms", ["endpoint"]);
const ttft = kept.histogram("modelgate_time_to_first_token_ms", ["endpoint"]);
/** What a caller keeps per endpoint (statuses other than 200 are looked up when they occur). */
const series = endpoints.map((endpoint) => ({
  ok: requests.with(endpoint, "vllm-a", "completed", "200"),
  prompt: tokens.with(endpoint, "vllm-a", "completed", "prompt"),
  completion: tokens.with(endpoint, "vllm-a", "completed", "completion"),
  duration: duration.with(endpoint),
  ttft: ttft.with(endpoint),
}));
Deno.bench("Metrics: 100 requests' counters and histograms through kept series", () => {
  for (let i = 0; i < 100; i++) {
    const s = series[i % 3];
    if (statuses[i % 4] === "200") s.ok.inc();
    else requests.with(endpoints[i % 3], "vllm-a", "completed", statuses[i % 4]).inc();
    s.prompt.inc(100);
    s.completion.inc(20);
    s.duration.observe(3 + i);
    s.ttft.observe(1 + i);
  }
});
