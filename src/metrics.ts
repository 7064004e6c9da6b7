/**
 * Counters and histograms exposed at /metrics in Prometheus' text format.
 *
 * Recording is on the path of every request, so it builds no strings: a series is found by its
 * label values, in the order of its metric's label names, in a tree of maps (its label text is made
 * once, when it first appears), and callers that record often keep the series itself
 * (`counter(name, labelNames).with(...)`).
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

/** A level of a family's tree: per value of the next label, the next level. */
interface Node<S> {
  next: Map<string, Node<S>> | null;
  series: S | null;
}

/**
 * The series of one metric. Its label names are fixed on first use (or declared by `counter()` and
 * `histogram()`), and a series is found by its values in that order whatever the order of the keys
 * it is given in: one label set is one series, as Prometheus requires.
 */
class Family<S extends Series> {
  /** Series that recorded something, in the order they first did (the order they render in). */
  readonly listed: S[] = [];
  #name: string;
  #names: readonly string[] | null = null;
  #root: Node<S> = { next: null, series: null };
  #make: (labels: string, list: (series: Series) => void) => S;
  #list = (series: Series) => this.listed.push(series as S);

  constructor(name: string, make: (labels: string, list: (series: Series) => void) => S) {
    this.#name = name;
    this.#make = make;
  }

  /**
   * The family's label names: `names` when it has none yet, else its own, which `names` must
   * match in any order. Throws for other names.
   */
  fix(names: readonly string[]): readonly string[] {
    if (this.#names === null) this.#names = [...names];
    else if (!sameNames(this.#names, names)) throw this.#mismatch(names);
    return this.#names;
  }

  /**
   * The series with these labels, created when new. Throws for a label set with other names (a
   * missing name is caught on every call, an extra one when the series is new: cheap on the path
   * every request takes).
   */
  get(labels: Labels): S {
    const names = this.#names ?? this.fix(Object.keys(labels));
    let node = this.#root;
    for (const name of names) {
      const value = labels[name];
      if (value === undefined) throw this.#mismatch(Object.keys(labels));
      node = child(node, value);
    }
    if (node.series) return node.series;
    if (Object.keys(labels).length !== names.length) throw this.#mismatch(Object.keys(labels));
    return node.series = this.#make(renderLabels(names, names.map((n) => labels[n])), this.#list);
  }

  /** The series with these values, in the order of the family's label names, created when new. */
  at(values: readonly string[]): S {
    let node = this.#root;
    for (const value of values) node = child(node, value);
    if (node.series) return node.series;
    const names = this.#names ?? [];
    if (values.length !== names.length) {
      throw new Error(
        `Metric "${this.#name}" takes ${names.length} label values, not ${values.length}`,
      );
    }
    return node.series = this.#make(renderLabels(names, values), this.#list);
  }

  /** The series with these labels if it exists. */
  find(labels: Labels): S | null {
    const names = this.#names;
    if (names === null || !sameNames(names, Object.keys(labels))) return null;
    let node: Node<S> | undefined = this.#root;
    for (const name of names) {
      node = node.next?.get(labels[name]);
      if (!node) return null;
    }
    return node.series;
  }

  #mismatch(names: readonly string[]): Error {
    const quoted = (list: readonly string[]) => list.map((n) => `"${n}"`).join(", ") || "none";
    return new Error(
      `Metric "${this.#name}" has labels ${quoted(this.#names ?? [])}, not ${quoted(names)}`,
    );
  }
}

/** Whether two lists hold the same label names, in any order. */
function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name) => b.includes(name));
}

function child<S>(node: Node<S>, value: string): Node<S> {
  node.next ??= new Map();
  let next = node.next.get(value);
  if (!next) {
    next = { next: null, series: null };
    node.next.set(value, next);
  }
  return next;
}

/**
 * How a caller's list of values finds its series: straight through when the caller names the labels
 * in the family's order, else reordered.
 */
function seriesBy<S extends Series>(
  family: Family<S>,
  labelNames: readonly string[],
): (values: readonly string[]) => S {
  const names = family.fix(labelNames);
  if (names.every((name, i) => name === labelNames[i])) return (values) => family.at(values);
  const order = names.map((name) => labelNames.indexOf(name));
  return (values) => family.at(order.map((i) => values[i]));
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
  #onScrape: (() => void)[] = [];

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
    const find = seriesBy(this.#counterFamily(name), labelNames);
    return { with: (...values) => find(values) };
  }

  /** A histogram whose series the caller finds once and keeps (`with(...values)`). */
  histogram(name: string, labelNames: readonly string[] = []): Histogram {
    const find = seriesBy(this.#histogramFamily(name), labelNames);
    return { with: (...values) => find(values) };
  }

  /**
   * Registers a gauge read at scrape time: one number, or one value per label set (e.g. per
   * backend), so series that come and go are never stale.
   */
  gauge(name: string, help: string, read: () => number | Iterable<[Labels, number]>): void {
    this.#gauges.set(name, read);
    this.#help.set(name, help);
  }

  /**
   * Runs `read` at the start of every scrape, before any gauge is read: gauges that share one
   * costly reading take it there, once per scrape.
   */
  onScrape(read: () => void): void {
    this.#onScrape.push(read);
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
    for (const read of this.#onScrape) read();
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
      else {
        for (const [labels, v] of value) {
          lines.push(`${name}${renderLabels(Object.keys(labels), Object.values(labels))} ${v}`);
        }
      }
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
    family = new Family(name, make);
    families.set(name, family);
  }
  return family;
}

function renderLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((name, i) => `${name}="${escapeLabel(values[i])}"`).join(",")}}`;
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
