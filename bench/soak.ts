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

    const open_: SlowStream[] = [];
    for (let i = 0; i < streams; i += 100) {
      const batch = Math.min(100, streams - i);
      open_.push(...await Promise.all([...Array(batch).keys()].map(() => open(url, gateway.key))));
    }
    const started = await settledRss(gateway.pid);
    const startPerStream = (started - floor) / streams;

    // Every stream is read slowly until 90% of its events arrived; then memory is sampled with
    // every stream still open.
    const target = Math.floor(chunks * 0.9);
    const begun = performance.now();
    await Promise.all(open_.map(async (stream) => {
      while (stream.events < target && await readOnce(stream)) await sleep(options.readGapMs);
    }));
    const seconds = (performance.now() - begun) / 1000;
    const ended = await settledRss(gateway.pid);
    const endPerStream = (ended - floor) / streams;
    await Promise.all(open_.map((s) => s.reader.cancel().catch(() => {})));

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
    report.out("| moment | gateway RSS MiB | KiB per open stream |");
    report.out("|---|---|---|");
    report.out(`| before the streams | ${fmt(floor / 1024, 1)} | |`);
    report.out(
      `| all open, first chunk read | ${fmt(started / 1024, 1)} | ${fmt(startPerStream, 1)} |`,
    );
    report.out(
      `| 90% of every stream read (${fmt(seconds, 0)} s later) | ${fmt(ended / 1024, 1)} | ${
        fmt(endPerStream, 1)
      } |`,
    );
    report.out();
    report.out(
      `10 clients that never read: gateway RSS ${fmt(stalledStart / 1024, 1)} → ${
        fmt(stalledEnd / 1024, 1)
      } MiB over 5 s`,
    );
    const drift = endPerStream / startPerStream;
    report.budget(
      drift <= 1.1,
      `memory per stream flat in the stream's length (end ${fmt(endPerStream, 1)} KiB vs start ${
        fmt(startPerStream, 1)
      } KiB: ${fmt(drift * 100, 0)}%)`,
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
