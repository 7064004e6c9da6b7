/**
 * The routing case: one model on two backends of different speed (the slow one 4x slower per
 * chunk), streamed at concurrency 32, with `least_busy` and with `weighted` (equal weights).
 * Part of `deno task bench`; alone: `deno run -A bench/routing_case.ts [--seconds N]`.
 */
import { parseArgs } from "node:util";
import { fmt, percentile, startDeno, stopAll, timeStream } from "./lib.ts";
import { startModelGate } from "./modelgate.ts";

const CONCURRENCY = 32;
const CHUNKS = 20;
const FAST_GAP_MS = 5;
const SLOW_GAP_MS = FAST_GAP_MS * 4;

/** Completion times of one strategy and how the backends shared the requests. */
export interface RoutingRow {
  strategy: string;
  requests: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Share of requests the fast backend served, in %. */
  fastShare: number;
}

/** Streams from `concurrency` workers for `seconds`; returns each request's completion time. */
async function load(url: string, key: string, seconds: number): Promise<number[]> {
  const until = performance.now() + seconds * 1000;
  const totals: number[] = [];
  await Promise.all([...Array(CONCURRENCY).keys()].map(async () => {
    while (performance.now() < until) {
      totals.push((await timeStream(url, { authorization: `Bearer ${key}` })).total);
    }
  }));
  return totals;
}

const served = async (port: number) =>
  (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()).served as number;

/** Runs the case in `dir`; `out` receives the Markdown lines. */
export async function routingCase(
  options: { dir: string; seconds: number; out: (line?: string) => void },
): Promise<RoutingRow[]> {
  const { out } = options;
  const fast = await startDeno(["bench/fake_backend.ts", "0", "0", `${CHUNKS}`, `${FAST_GAP_MS}`]);
  const slow = await startDeno(["bench/fake_backend.ts", "0", "0", `${CHUNKS}`, `${SLOW_GAP_MS}`]);
  const rows: RoutingRow[] = [];
  try {
    for (const strategy of ["least_busy", "weighted"]) {
      const gateway = await startModelGate({
        backendUrl: `http://127.0.0.1:${fast.port}`,
        extraBackendUrls: [`http://127.0.0.1:${slow.port}`],
        extraConfig: `routing:\n  strategy: ${strategy}\n`,
        dir: `${options.dir}/routing-${strategy}`,
        keyCount: 0,
      });
      const url = `${gateway.url}/v1/chat/completions`;
      await load(url, gateway.key, 1);
      const before = [await served(fast.port), await served(slow.port)];
      const totals = await load(url, gateway.key, options.seconds);
      const fastCount = (await served(fast.port)) - before[0];
      const slowCount = (await served(slow.port)) - before[1];
      await gateway.stop();
      rows.push({
        strategy,
        requests: totals.length,
        meanMs: totals.reduce((sum, t) => sum + t, 0) / totals.length,
        p50Ms: percentile(totals, 0.5),
        p99Ms: percentile(totals, 0.99),
        fastShare: (fastCount / Math.max(1, fastCount + slowCount)) * 100,
      });
    }
  } finally {
    await fast.stop();
    await slow.stop();
  }
  out();
  out(
    `## Routing: two backends, one 4x slower per chunk (${CHUNKS} chunks, ${FAST_GAP_MS} vs ${SLOW_GAP_MS} ms apart), c=${CONCURRENCY}`,
  );
  out();
  out("| strategy | requests | mean ms | p50 ms | p99 ms | share on the fast backend |");
  out("|---|---|---|---|---|---|");
  for (const r of rows) {
    out(
      `| ${r.strategy} | ${r.requests} | ${fmt(r.meanMs)} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${
        fmt(r.fastShare, 1)
      }% |`,
    );
  }
  return rows;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { seconds: { type: "string" } } });
  const dir = await Deno.makeTempDir({ prefix: "modelgate-bench-routing-" });
  try {
    await routingCase({
      dir,
      seconds: Number(values.seconds ?? 5),
      out: (l = "") => console.log(l),
    });
  } finally {
    await stopAll();
    await Deno.remove(dir, { recursive: true });
  }
}
