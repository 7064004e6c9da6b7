/**
 * Stream soak: many long streams read slowly, and a few never read, through ModelGate. The
 * gateway's memory per open stream must not grow with how far the streams got, and a client that
 * stops reading must hold the backend back (as a plain pipe does) instead of filling the gateway.
 */
import { fmt, percentile, rssKiB, startDeno } from "./lib.ts";
import { startModelGate } from "./modelgate.ts";

/** Where the soak writes its lines and verdicts. */
export interface SoakReport {
  out(line?: string): void;
  budget(ok: boolean, text: string): void;
}

/** Options for {@linkcode streamSoak}. */
export interface SoakOptions {
  dir: string;
  streams: number;
  chunks: number;
  /** Pause of each slow reader between two reads, in ms. */
  readGapMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** RSS of a process in KiB: the median of a few samples, so one GC does not decide. */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssKiB(pid));
    await sleep(200);
  }
  return percentile(samples, 0.5);
}

/** One slow reader: counts the events it received. */
interface SlowStream {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  events: number;
}

async function open(url: string, key: string): Promise<SlowStream> {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "bench-model",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }),
  });
  if (!response.ok || !response.body) throw new Error(`stream refused: ${response.status}`);
  const stream = { reader: response.body.getReader(), events: 0 };
  await readOnce(stream);
  return stream;
}

async function readOnce(stream: SlowStream): Promise<boolean> {
  const { value, done } = await stream.reader.read();
  if (done) return false;
  let count = 0;
  for (let i = 0; i < value.length - 1; i++) {
    if (value[i] === 10 && value[i + 1] === 10) count++;
  }
  stream.events += count;
  return true;
}

/** Runs the soak and reports memory per stream at the start and at the end. */
export async function streamSoak(report: SoakReport, options: SoakOptions): Promise<void> {
  const { streams, chunks } = options;
  const backend = await startDeno(["bench/fake_backend.ts", "0", "0", String(chunks), "0"]);
  const gateway = await startModelGate({
    backendUrl: `http://127.0.0.1:${backend.port}`,
    dir: `${options.dir}/soak`,
    keyCount: 0,
  });
  const url = `${gateway.url}/v1/chat/completions`;
  try {
    // Warm up JIT and pools, then measure the floor.
    const warm = await Promise.all([...Array(20).keys()].map(() => open(url, gateway.key)));
    await Promise.all(warm.map((s) => s.reader.cancel()));
    const floor = await settledRss(gateway.pid);

    const floorHeap = await gateway.metric("modelgate_js_heap_used_bytes");
    const open_: SlowStream[] = [];
    for (let i = 0; i < streams; i += 100) {
      const batch = Math.min(100, streams - i);
      open_.push(...await Promise.all([...Array(batch).keys()].map(() => open(url, gateway.key))));
    }

    // Every stream is read slowly; memory is sampled once every stream is 10% through (the
    // start of the soak, streams flowing) and again at 90%, every stream still open.
    const readTo = (share: number) =>
      Promise.all(open_.map(async (stream) => {
        const target = Math.floor(chunks * share);
        while (stream.events < target && await readOnce(stream)) await sleep(options.readGapMs);
      }));
    const sample = async () => ({
      rss: await settledRss(gateway.pid),
      heap: await gateway.metric("modelgate_js_heap_used_bytes"),
    });
    const begun = performance.now();
    await readTo(0.1);
    const start = await sample();
    await readTo(0.9);
    const end = await sample();
    const seconds = (performance.now() - begun) / 1000;
    await Promise.all(open_.map((s) => s.reader.cancel().catch(() => {})));
    const perStream = (rss: number) => (rss - floor) / streams;
    const heapPerStream = (heap: number) => (heap - floorHeap) / 1024 / streams;

    // Clients that never read: the backend must be held back, not buffered by the gateway.
    const stalled = await Promise.all([...Array(10).keys()].map(() => open(url, gateway.key)));
    const stalledStart = await settledRss(gateway.pid);
    await sleep(5000);
    const stalledEnd = await settledRss(gateway.pid);
    await Promise.all(stalled.map((s) => s.reader.cancel().catch(() => {})));
    const stalledGrowth = (stalledEnd - stalledStart) / 1024;

    report.out();
    report.out(`## Stream soak (${streams} streams of ${chunks} chunks, slow readers)`);
    report.out();
    report.out(
      "| moment | gateway RSS MiB | RSS KiB per open stream | JS heap KiB per open stream |",
    );
    report.out("|---|---|---|---|");
    report.out(`| before the streams | ${fmt(floor / 1024, 1)} | | |`);
    for (const [label, at] of [["10% of every stream read", start], ["90% read", end]] as const) {
      report.out(
        `| ${label} | ${fmt(at.rss / 1024, 1)} | ${fmt(perStream(at.rss), 1)} | ${
          fmt(heapPerStream(at.heap), 1)
        } |`,
      );
    }
    report.out();
    report.out(`Reading every stream from 10% to 90% took ${fmt(seconds, 0)} s.`);
    report.out();
    report.out(
      `10 clients that never read: gateway RSS ${fmt(stalledStart / 1024, 1)} → ${
        fmt(stalledEnd / 1024, 1)
      } MiB over 5 s`,
    );
    const drift = perStream(end.rss) / perStream(start.rss);
    report.budget(
      drift <= 1.1,
      `memory per stream flat in the stream's length (at 90% ${
        fmt(perStream(end.rss), 1)
      } KiB vs at 10% ${fmt(perStream(start.rss), 1)} KiB: ${fmt(drift * 100, 0)}%)`,
    );
    report.budget(
      stalledGrowth < 16,
      `clients that never read do not grow the gateway (${fmt(stalledGrowth, 1)} MiB in 5 s)`,
    );
  } finally {
    await gateway.stop();
    await backend.stop();
  }
}
