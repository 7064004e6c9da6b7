/**
 * Counters and histograms exposed at /metrics in Prometheus' text format.
 *
 * Recording is on the path of every request, so it builds no strings: a series is found by its
 * label names and values in a tree of maps (its label text is made once, when it first appears),
 * and callers that record often keep the series itself (`counter(name, labelNames).with(...)`).
 */

/** Label names and values of one series. */
export type Labels = Record<string, string>;

const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

/** What every series has: its labels as rendered, and its place in the listing once it records. */
abstract class Series {
  /** The series' labels as rendered: `{name="value",...}`, or "" without labels. */
  readonly labels: string;
  #list: ((series: Series) => void) | null;

  constructor(labels: string, list: (series: Series) => void) {
    this.labels = labels;
    this.#list = list;
  }

  /** Lists the series the first time it records (it renders from then on). */
  protected recorded(): void {
    if (this.#list === null) return;
    this.#list(this);
    this.#list = null;
  }
}

/** One counter series: keep it to add to it without looking it up again. */
export class CounterSeries extends Series {
  /** The count so far. */
  value = 0;

  /** Adds `value` (default 1). */
  inc(value = 1): void {
    this.recorded();
    this.value += value;
  }
}

/** One histogram series of latencies in milliseconds. */
export class HistogramSeries extends Series {
  /** Observations per bucket of {@linkcode LATENCY_BUCKETS_MS}, not cumulative (+Inf last). */
  readonly buckets: number[] = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0);
  sum = 0;
  count = 0;

  /** Records one observation in milliseconds. */
  observe(valueMs: number): void {
    this.recorded();
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && !(valueMs <= LATENCY_BUCKETS_MS[i])) i++;
    this.buckets[i]++;
    this.sum += valueMs;
    this.count++;
  }
}

/** A level of a family's tree: per label name, per value, the next level. */
interface Node<S> {
  children: Map<string, Map<string, Node<S>>> | null;
  series: S | null;
}

/** The series of one metric, found by label names and values; listed once they record. */
class Family<S extends Series> {
  /** Series that recorded something, in the order they first did (the order they render in). */
  readonly listed: S[] = [];
  #root: Node<S> = { children: null, series: null };
  #make: (labels: string, list: (series: Series) => void) => S;
  #list = (series: Series) => this.listed.push(series as S);

  constructor(make: (labels: string, list: (series: Series) => void) => S) {
    this.#make = make;
  }

  /** The series with these labels (names in this order), created when new. */
  get(labels: Labels): S {
    let node = this.#root;
    for (const name in labels) node = child(node, name, labels[name]);
    return node.series ??= this.#make(renderLabels(labels), this.#list);
  }

  /** The series with these label names and values, created when new. */
  with(names: readonly string[], values: readonly string[]): S {
    let node = this.#root;
    for (let i = 0; i < names.length; i++) node = child(node, names[i], values[i]);
    if (node.series) return node.series;
    const labels: Labels = {};
    names.forEach((name, i) => labels[name] = values[i]);
    return node.series = this.#make(renderLabels(labels), this.#list);
  }

  /** The series with these labels if it exists. */
  find(labels: Labels): S | null {
    let node: Node<S> | undefined = this.#root;
    for (const name in labels) {
      node = node.children?.get(name)?.get(labels[name]);
      if (!node) return null;
    }
    return node.series;
  }
}

function child<S>(node: Node<S>, name: string, value: string): Node<S> {
  node.children ??= new Map();
  let byValue = node.children.get(name);
  if (!byValue) {
    byValue = new Map();
    node.children.set(name, byValue);
  }
  let next = byValue.get(value);
  if (!next) {
    next = { children: null, series: null };
    byValue.set(value, next);
  }
  return next;
}

/** A counter with fixed label names: `with(...values)` is the series to keep and add to. */
export interface Counter {
  with(...values: string[]): CounterSeries;
}

/** A histogram with fixed label names: `with(...values)` is the series to keep and observe. */
export interface Histogram {
  with(...values: string[]): HistogramSeries;
}

/** A small metrics registry: label sets are few (endpoint, status, backend, outcome). */
export class Metrics {
  #counters = new Map<string, Family<CounterSeries>>();
  #histograms = new Map<string, Family<HistogramSeries>>();
  #gauges = new Map<string, () => number | Iterable<[Labels, number]>>();
  #help = new Map<string, string>();

  /** Adds `value` to a counter. */
  inc(name: string, labels: Labels = {}, value = 1): void {
    this.#counterFamily(name).get(labels).inc(value);
  }

  /** Records one observation in milliseconds. */
  observe(name: string, labels: Labels, valueMs: number): void {
    this.#histogramFamily(name).get(labels).observe(valueMs);
  }

  /** A counter whose series the caller finds once and keeps (`with(...values)`). */
  counter(name: string, labelNames: readonly string[] = []): Counter {
    const family = this.#counterFamily(name);
    return { with: (...values) => family.with(labelNames, values) };
  }

  /** A histogram whose series the caller finds once and keeps (`with(...values)`). */
  histogram(name: string, labelNames: readonly string[] = []): Histogram {
    const family = this.#histogramFamily(name);
    return { with: (...values) => family.with(labelNames, values) };
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
    return this.#counters.get(name)?.find(labels)?.value ?? 0;
  }

  /** Renders every metric in Prometheus' text exposition format. */
  render(): string {
    const lines: string[] = [];
    const header = (name: string, type: string) => {
      const help = this.#help.get(name);
      if (help) lines.push(`# HELP ${name} ${help}`);
      lines.push(`# TYPE ${name} ${type}`);
    };
    for (const [name, family] of this.#counters) {
      if (family.listed.length === 0) continue;
      header(name, "counter");
      for (const series of family.listed) lines.push(`${name}${series.labels} ${series.value}`);
    }
    for (const [name, family] of this.#histograms) {
      if (family.listed.length === 0) continue;
      header(name, "histogram");
      for (const { labels, buckets, sum, count } of family.listed) {
        let cumulative = 0;
        LATENCY_BUCKETS_MS.forEach((bound, i) => {
          cumulative += buckets[i];
          lines.push(`${name}_bucket${withLabel(labels, "le", String(bound))} ${cumulative}`);
        });
        lines.push(`${name}_bucket${withLabel(labels, "le", "+Inf")} ${count}`);
        lines.push(`${name}_sum${labels} ${sum}`);
        lines.push(`${name}_count${labels} ${count}`);
      }
    }
    for (const [name, read] of this.#gauges) {
      header(name, "gauge");
      const value = read();
      if (typeof value === "number") lines.push(`${name} ${value}`);
      else for (const [labels, v] of value) lines.push(`${name}${renderLabels(labels)} ${v}`);
    }
    return lines.join("\n") + "\n";
  }

  #counterFamily(name: string): Family<CounterSeries> {
    return familyOf(this.#counters, name, (labels, list) => new CounterSeries(labels, list));
  }

  #histogramFamily(name: string): Family<HistogramSeries> {
    return familyOf(this.#histograms, name, (labels, list) => new HistogramSeries(labels, list));
  }
}

/** The family of metric `name` in `families`, created when new. */
function familyOf<S extends Series>(
  families: Map<string, Family<S>>,
  name: string,
  make: (labels: string, list: (series: Series) => void) => S,
): Family<S> {
  let family = families.get(name);
  if (!family) {
    family = new Family(make);
    families.set(name, family);
  }
  return family;
}

function renderLabels(labels: Labels): string {
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
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}
