import { assert, assertEquals, assertStringIncludes } from "../tests/assert.ts";
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

Deno.test("Metrics: series kept from counter()/histogram() are those inc()/observe() record to", () => {
  const metrics = new Metrics();
  metrics.describe("requests_total", "Requests");
  const requests = metrics.counter("requests_total", ["endpoint", "status"]);
  const ok = requests.with("chat", "200");
  const latency = metrics.histogram("latency_ms", ["endpoint"]).with("chat");
  // Found but never recorded: not rendered (as with inc(), a series appears once it counts).
  requests.with("chat", "500");
  metrics.histogram("latency_ms", ["endpoint"]).with("embeddings");
  metrics.counter("unused_total");
  ok.inc();
  ok.inc(2);
  metrics.inc("requests_total", { endpoint: "chat", status: "200" });
  metrics.inc("requests_total", { endpoint: 'a"b', status: "429" });
  latency.observe(4);
  metrics.observe("latency_ms", { endpoint: "chat" }, 30_000);
  latency.observe(Number.POSITIVE_INFINITY);
  assertEquals(ok.value, 4);
  assertEquals(metrics.value("requests_total", { endpoint: "chat", status: "200" }), 4);
  assertEquals(metrics.value("requests_total", { endpoint: "chat", status: "500" }), 0);
  assertEquals(metrics.value("requests_total", { status: "200", endpoint: "chat" }), 4);
  const buckets = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];
  assertEquals(
    metrics.render(),
    [
      "# HELP requests_total Requests",
      "# TYPE requests_total counter",
      'requests_total{endpoint="chat",status="200"} 4',
      'requests_total{endpoint="a\\"b",status="429"} 1',
      "# TYPE latency_ms histogram",
      ...buckets.map((le) => `latency_ms_bucket{endpoint="chat",le="${le}"} ${le < 30000 ? 1 : 2}`),
      'latency_ms_bucket{endpoint="chat",le="+Inf"} 3',
      'latency_ms_sum{endpoint="chat"} Infinity',
      'latency_ms_count{endpoint="chat"} 3',
      "",
    ].join("\n"),
  );
});

Deno.test("Metrics: one label set is one series whatever order its names are given in", () => {
  const metrics = new Metrics();
  metrics.inc("requests_total", { endpoint: "chat", status: "200" });
  metrics.inc("requests_total", { status: "200", endpoint: "chat" }, 2);
  metrics.counter("requests_total", ["status", "endpoint"]).with("200", "chat").inc();
  metrics.counter("requests_total", ["status", "endpoint"]).with("429", "chat").inc();
  metrics.observe("latency_ms", { le_ms: "x", endpoint: "chat" }, 7);
  metrics.histogram("latency_ms", ["endpoint", "le_ms"]).with("chat", "x").observe(9);
  assertEquals(metrics.value("requests_total", { endpoint: "chat", status: "200" }), 4);
  assertEquals(metrics.value("requests_total", { status: "429", endpoint: "chat" }), 1);
  assertEquals(metrics.value("requests_total", { endpoint: "chat" }), 0);
  const text = metrics.render();
  assertEquals(text.split("\n").filter((line) => line.startsWith("requests_total")), [
    'requests_total{endpoint="chat",status="200"} 4',
    'requests_total{endpoint="chat",status="429"} 1',
  ]);
  assert(text.includes('latency_ms_count{le_ms="x",endpoint="chat"} 2'), text);
});

/** The message of what `fn` throws. */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected an error");
}

Deno.test("Metrics refuses a label set whose names differ from the metric's", () => {
  const metrics = new Metrics();
  metrics.inc("requests_total", { endpoint: "chat", status: "200" });
  const refused = 'Metric "requests_total" has labels "endpoint", "status", not';
  assertStringIncludes(thrown(() => metrics.inc("requests_total", { endpoint: "chat" })), refused);
  assertStringIncludes(
    thrown(() => metrics.inc("requests_total", { endpoint: "chat", status: "500", kind: "x" })),
    refused,
  );
  assertStringIncludes(
    thrown(() => metrics.counter("requests_total", ["endpoint", "kind"])),
    refused,
  );
  assertEquals(metrics.value("requests_total", { endpoint: "chat", status: "200" }), 1);
});
