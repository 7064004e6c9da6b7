/** Counters and histograms exposed at /metrics in Prometheus' text format. */

/** Label names and values of one series. */
export type Labels = Record<string, string>;

const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

/** A small metrics registry: label sets are few (endpoint, status, backend, outcome). */
export class Metrics {
  #counters = new Map<string, Map<string, number>>();
  #histograms = new Map<string, Map<string, Histogram>>();
  #gauges = new Map<string, () => number | Iterable<[Labels, number]>>();
  #help = new Map<string, string>();

  /** Adds `value` to a counter. */
  inc(name: string, labels: Labels = {}, value = 1): void {
    const series = this.#series(this.#counters, name);
    const key = labelKey(labels);
    series.set(key, (series.get(key) ?? 0) + value);
  }

  /** Records one observation in milliseconds. */
  observe(name: string, labels: Labels, valueMs: number): void {
    const series = this.#series(this.#histograms, name);
    const key = labelKey(labels);
    let histogram = series.get(key);
    if (!histogram) {
      histogram = { buckets: LATENCY_BUCKETS_MS.map(() => 0), sum: 0, count: 0 };
      series.set(key, histogram);
    }
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
      if (valueMs <= LATENCY_BUCKETS_MS[i]) histogram.buckets[i]++;
    }
    histogram.sum += valueMs;
    histogram.count++;
  }

  /**
   * Registers a gauge read at scrape time: one number, or one value per label set (e.g. per
   * backend), so series that come and go are never stale.
   */
  gauge(name: string, help: string, read: () => number | Iterable<[Labels, number]>): void {
    this.#gauges.set(name, read);
    this.#help.set(name, help);
  }

  /** Sets the help text of a metric. */
  describe(name: string, help: string): void {
    this.#help.set(name, help);
  }

  /** The current value of a counter (for tests and /admin). */
  value(name: string, labels: Labels = {}): number {
    return this.#counters.get(name)?.get(labelKey(labels)) ?? 0;
  }

  /** Renders every metric in Prometheus' text exposition format. */
  render(): string {
    const lines: string[] = [];
    const header = (name: string, type: string) => {
      const help = this.#help.get(name);
      if (help) lines.push(`# HELP ${name} ${help}`);
      lines.push(`# TYPE ${name} ${type}`);
    };
    for (const [name, series] of this.#counters) {
      header(name, "counter");
      for (const [key, value] of series) lines.push(`${name}${key} ${value}`);
    }
    for (const [name, series] of this.#histograms) {
      header(name, "histogram");
      for (const [key, h] of series) {
        LATENCY_BUCKETS_MS.forEach((bound, i) => {
          lines.push(`${name}_bucket${withLabel(key, "le", String(bound))} ${h.buckets[i]}`);
        });
        lines.push(`${name}_bucket${withLabel(key, "le", "+Inf")} ${h.count}`);
        lines.push(`${name}_sum${key} ${h.sum}`);
        lines.push(`${name}_count${key} ${h.count}`);
      }
    }
    for (const [name, read] of this.#gauges) {
      header(name, "gauge");
      const value = read();
      if (typeof value === "number") lines.push(`${name} ${value}`);
      else for (const [labels, v] of value) lines.push(`${name}${labelKey(labels)} ${v}`);
    }
    return lines.join("\n") + "\n";
  }

  #series<T>(map: Map<string, Map<string, T>>, name: string): Map<string, T> {
    let series = map.get(name);
    if (!series) {
      series = new Map();
      map.set(name, series);
    }
    return series;
  }
}

function labelKey(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function withLabel(key: string, name: string, value: string): string {
  const extra = `${name}="${value}"`;
  return key === "" ? `{${extra}}` : `${key.slice(0, -1)},${extra}}`;
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabel(value: string): string {
  // Label values are almost always plain; skip the three replacements then (hot path).
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}
