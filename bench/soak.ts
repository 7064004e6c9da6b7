/**
 * Stream soak: many long streams read slowly, and a few never read, through ModelGate and through
 * the runtime's floor for a metering proxy (a bare Deno proxy with one identity TransformStream),
 * in one run. The gateway's memory per open stream must not grow with how far the streams got,
 * and a client that stops reading must hold the backend back (as a plain pipe does) instead of
 * filling the gateway.
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

interface Target {
  url: string;
  headers: Record<string, string>;
  pid: number;
}

async function open(target: Target): Promise<SlowStream> {
  const response = await fetch(target.url, {
    method: "POST",
    headers: { ...target.headers, "content-type": "application/json" },
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
  for (let i = 0; i < value.length - 1; i++) {
    if (value[i] === 10 && value[i + 1] === 10) stream.events++;
  }
  return true;
}

/** What one soak of one process measured, in KiB. */
interface SoakResult {
  floor: number;
  /** RSS per open stream once every stream is a quarter through (buffers have grown). */
  early: number;
  /** The same at 90% of every stream, all still open. */
  late: number;
  seconds: number;
  /** RSS growth over 5 s with 10 clients that never read, in MiB. */
  stalledGrowthMiB: number;
}

async function soak(target: Target, options: SoakOptions): Promise<SoakResult> {
  const { streams, chunks } = options;
  const warm = await Promise.all([...Array(20).keys()].map(() => open(target)));
  await Promise.all(warm.map((s) => s.reader.cancel()));
  const floor = await settledRss(target.pid);
  const all: SlowStream[] = [];
  for (let i = 0; i < streams; i += 100) {
    const batch = Math.min(100, streams - i);
    all.push(...await Promise.all([...Array(batch).keys()].map(() => open(target))));
  }
  const readTo = (share: number) =>
    Promise.all(all.map(async (stream) => {
      const goal = Math.floor(chunks * share);
      while (stream.events < goal && await readOnce(stream)) await sleep(options.readGapMs);
    }));
  const begun = performance.now();
  await readTo(0.25);
  const early = (await settledRss(target.pid) - floor) / streams;
  await readTo(0.9);
  const late = (await settledRss(target.pid) - floor) / streams;
  const seconds = (performance.now() - begun) / 1000;
  await Promise.all(all.map((s) => s.reader.cancel().catch(() => {})));

  // Clients that never read: the backend must be held back, not buffered by the proxy.
  const stalled = await Promise.all([...Array(10).keys()].map(() => open(target)));
  const before = await settledRss(target.pid);
  await sleep(5000);
  const after = await settledRss(target.pid);
  await Promise.all(stalled.map((s) => s.reader.cancel().catch(() => {})));
  return { floor, early, late, seconds, stalledGrowthMiB: (after - before) / 1024 };
}

/** Runs the soak on the floor proxy and on ModelGate and reports both. */
export async function streamSoak(report: SoakReport, options: SoakOptions): Promise<void> {
  const backend = await startDeno([
    "bench/fake_backend.ts",
    "0",
    "0",
    String(options.chunks),
    "0",
  ]);
  const backendUrl = `http://127.0.0.1:${backend.port}`;
  try {
    const proxy = await startDeno(["bench/bare_proxy.ts", "0", backendUrl, "transform"]);
    const floorRun = await soak({
      url: `http://127.0.0.1:${proxy.port}/v1/chat/completions`,
      headers: {},
      pid: proxy.pid,
    }, options);
    await proxy.stop();
    const gateway = await startModelGate({ backendUrl, dir: `${options.dir}/soak`, keyCount: 0 });
    let gatewayRun: SoakResult;
    try {
      gatewayRun = await soak({
        url: `${gateway.url}/v1/chat/completions`,
        headers: { authorization: `Bearer ${gateway.key}` },
        pid: gateway.pid,
      }, options);
    } finally {
      await gateway.stop();
    }
    const rows: [string, SoakResult][] = [
      ["bare proxy + identity TransformStream (floor)", floorRun],
      ["ModelGate", gatewayRun],
    ];
    report.out();
    report.out(
      `## Stream soak (${options.streams} streams of ${options.chunks} chunks, slow readers)`,
    );
    report.out();
    report.out(
      "| process | RSS before MiB | KiB/stream at 25% | KiB/stream at 90% | growth | 10 stalled clients, 5 s |",
    );
    report.out("|---|---|---|---|---|---|");
    for (const [label, run] of rows) {
      report.out(
        `| ${label} | ${fmt(run.floor / 1024, 1)} | ${fmt(run.early, 1)} | ${fmt(run.late, 1)} | ${
          fmt((run.late / run.early - 1) * 100, 0)
        }% | ${fmt(run.stalledGrowthMiB, 1)} MiB |`,
      );
    }
    report.out();
    report.out(`ModelGate's streams took ${fmt(gatewayRun.seconds, 0)} s from 25% to 90%.`);
    const drift = gatewayRun.late / gatewayRun.early;
    const floorDrift = floorRun.late / floorRun.early;
    report.budget(
      drift <= 1.1,
      `memory per stream flat in the stream's length (${fmt(gatewayRun.late, 1)} KiB at 90% vs ${
        fmt(gatewayRun.early, 1)
      } KiB at 25%: +${fmt((drift - 1) * 100, 0)}%; the runtime floor grows +${
        fmt((floorDrift - 1) * 100, 0)
      }%)`,
    );
    report.budget(
      drift <= floorDrift + 0.1,
      `memory per stream grows no more than the runtime floor's, within 10 points`,
    );
    report.budget(
      gatewayRun.stalledGrowthMiB < 16,
      `clients that never read do not grow the gateway (${
        fmt(gatewayRun.stalledGrowthMiB, 1)
      } MiB in 5 s)`,
    );
  } finally {
    await backend.stop();
  }
}
