import { assert, assertEquals } from "../tests/assert.ts";
import { Metrics } from "./metrics.ts";

Deno.test("Metrics renders counters, escaped labels and cumulative histogram buckets", () => {
  const metrics = new Metrics();
  metrics.describe("requests_total", "Requests");
  metrics.inc("requests_total", { model: 'a"b\\c\nd' }, 2);
  metrics.inc("requests_total", { model: 'a"b\\c\nd' });
  metrics.observe("latency_ms", { endpoint: "chat" }, 7);
  metrics.observe("latency_ms", { endpoint: "chat" }, 700);
  const text = metrics.render();
  assert(text.includes("# HELP requests_total Requests"));
  assert(text.includes('requests_total{model="a\\"b\\\\c\\nd"} 3'), text);
  assert(text.includes('latency_ms_bucket{endpoint="chat",le="10"} 1'), text);
  assert(text.includes('latency_ms_bucket{endpoint="chat",le="1000"} 2'), text);
  assert(text.includes('latency_ms_count{endpoint="chat"} 2'), text);
  assertEquals(metrics.value("requests_total", { model: 'a"b\\c\nd' }), 3);
});

Deno.test("Metrics renders a labelled gauge with one series per label set, read at scrape time", () => {
  const metrics = new Metrics();
  let inFlight = 2;
  metrics.gauge("in_flight", "Requests in flight", () => [
    [{ backend: "a" }, inFlight],
    [{ backend: "b" }, 0],
  ]);
  inFlight = 5;
  const text = metrics.render();
  assert(text.includes("# TYPE in_flight gauge"), text);
  assert(text.includes('in_flight{backend="a"} 5'), text);
  assert(text.includes('in_flight{backend="b"} 0'), text);
});
