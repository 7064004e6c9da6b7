/**
 * `deno task bench`: direct vs bare Deno proxy vs ModelGate, measured side by side in one run on
 * one machine, with every process started here and stopped at the end, plus the routing case
 * (bench/routing_case.ts). Prints a markdown table and writes it (and JSON) under
 * bench/results/. Flags: --only a,b (cases: throughput, streaming, isolation, cpu, flood,
 * limits, keys, models, memory, soak, routing, accounting), --seconds N (per load case, default
 * 5), --soak-chunks N (chunks per soak stream, default 4000), --keys N (stored keys for the
 * key-count case, default 100000), --streams N (default 1000).
 */
import { parseArgs } from "node:util";
import {
  cpuMs,
  fmt,
  hey,
  type LoadResult,
  percentile,
  rssKiB,
  startDeno,
  stopAll,
  timeStream,
} from "./lib.ts";
import { type BenchGateway, type BenchGatewayOptions, startModelGate } from "./modelgate.ts";
import { routingCase } from "./routing_case.ts";
import { startRedis } from "../tests/fakes/redis_server.ts";
import { streamSoak } from "./soak.ts";
import { accountingSoak } from "./accounting_soak.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string" },
    keys: { type: "string" },
    streams: { type: "string" },
    "soak-chunks": { type: "string" },
    only: { type: "string" },
  },
});
const SECONDS = Number(values.seconds ?? 5);
const KEY_COUNT = Number(values.keys ?? 100_000);
const STREAMS = Number(values.streams ?? 1000);
const SOAK_CHUNKS = Number(values["soak-chunks"] ?? 4000);
const CONCURRENCY = 32;
/** Alternating rounds of the throughput case (median per target). */
const THROUGHPUT_ROUNDS = 3;
/** Alternating rounds of the cases comparing gateways (their budgets compare runs noise can swing). */
const COMPARE_ROUNDS = 3;
/** Cases to run (`--only soak,memory`); all by default. */
const ONLY = values.only ? new Set(values.only.split(",")) : null;
const runs = (name: string) => ONLY === null || ONLY.has(name);

for (const tool of ["hey", "wrk"]) {
  const found = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).output();
  if (!found.success) {
    console.error(`bench: "${tool}" is missing: apt-get install -y hey wrk`);
    Deno.exit(1);
  }
}

const lines: string[] = [];
const report: Record<string, unknown> = {
  date: new Date().toISOString(),
  cores: navigator.hardwareConcurrency,
};
const out = (line = "") => {
  console.log(line);
  lines.push(line);
};
const verdicts: string[] = [];
const budget = (ok: boolean, text: string) => verdicts.push(`${ok ? "PASS" : "FAIL"}  ${text}`);

Deno.addSignalListener("SIGINT", () => stopAll().finally(() => Deno.exit(130)));

try {
  const tmp = await Deno.makeTempDir({ prefix: "modelgate-bench-" });
  const body = `${tmp}/body.json`;
  await Deno.writeTextFile(
    body,
    // A 1 KB prompt: the request the CPU budget is set for.
    JSON.stringify({
      model: "bench-model",
      messages: [{ role: "user", content: "x".repeat(1024) }],
    }),
  );

  const backend = await startDeno(["bench/fake_backend.ts", "0", "0", "20", "0"]);
  const backendUrl = `http://127.0.0.1:${backend.port}`;
  const bare = await startDeno(["bench/bare_proxy.ts", "0", backendUrl]);
  const bareJson = await startDeno(["bench/bare_proxy.ts", "0", backendUrl, "json"]);
  const bareRecord = await startDeno(["bench/bare_proxy.ts", "0", backendUrl, "record"]);
  const bareMeter = await startDeno(["bench/bare_proxy.ts", "0", backendUrl, "transform"]);
  const gateway = await startModelGate({ backendUrl, dir: tmp, keyCount: 0 });
  const targets = {
    direct: { url: `${backendUrl}/v1/chat/completions`, headers: {} },
    bare: { url: `http://127.0.0.1:${bare.port}/v1/chat/completions`, headers: {} },
    bareJson: { url: `http://127.0.0.1:${bareJson.port}/v1/chat/completions`, headers: {} },
    bareRecord: { url: `http://127.0.0.1:${bareRecord.port}/v1/chat/completions`, headers: {} },
    bareMeter: { url: `http://127.0.0.1:${bareMeter.port}/v1/chat/completions`, headers: {} },
    modelgate: {
      url: `${gateway.url}/v1/chat/completions`,
      headers: { authorization: `Bearer ${gateway.key}` },
    },
  };
  const load = (target: keyof typeof targets, extra: Partial<Parameters<typeof hey>[0]> = {}) =>
    hey({
      ...targets[target],
      bodyFile: body,
      seconds: SECONDS,
      concurrency: CONCURRENCY,
      ...extra,
    });

  // Warm-up: JIT, connection pools, KV caches.
  for (const target of ["direct", "bare", "bareJson", "bareRecord", "modelgate"] as const) {
    await load(target, { seconds: 2 });
  }

  out(
    `# ModelGate benchmark — ${report.date}, ${report.cores} cores, ${SECONDS}s per case, c=${CONCURRENCY}`,
  );
  if (runs("throughput")) {
    await throughputCases(load, {
      direct: backend.pid,
      bare: bare.pid,
      bareJson: bareJson.pid,
      bareRecord: bareRecord.pid,
      modelgate: gateway.pid,
    });
  }
  if (runs("streaming")) await streamingCases(targets, gateway.pid);
  if (runs("isolation")) await isolationCases(tmp, targets);
  if (runs("cpu")) {
    await cpuPerRequest(tmp, {
      modelgate: [targets.modelgate, gateway.pid],
      bare: [targets.bare, bare.pid],
      bareJson: [targets.bareJson, bareJson.pid],
      bareRecord: [targets.bareRecord, bareRecord.pid],
    });
  }
  if (runs("flood")) await floodCase(body, targets, backendUrl);
  await gateway.stop();

  if (runs("limits")) await limiterCost(body, backendUrl, tmp);
  if (runs("keys")) await keyCountCase(body, backendUrl, tmp);
  if (runs("models")) await modelCountCase(body, backendUrl, tmp);
  if (runs("memory")) await memoryPerStream(tmp);
  if (runs("routing")) {
    const routing = await routingCase({ dir: tmp, seconds: SECONDS, out });
    const [leastBusy, weighted] = routing;
    budget(
      leastBusy.meanMs < weighted.meanMs,
      `least_busy completes faster on average than weighted on unequal backends (${
        fmt(leastBusy.meanMs)
      } vs ${fmt(weighted.meanMs)} ms)`,
    );
    report.routing = routing;
  }
  if (runs("soak")) {
    await streamSoak({ out, budget }, {
      dir: tmp,
      streams: STREAMS,
      chunks: SOAK_CHUNKS,
      readGapMs: 5,
    });
  }
  if (runs("accounting")) report.accounting = await accountingSoak({ out, budget });

  out();
  out("## Budget");
  out();
  for (const verdict of verdicts) out(`- ${verdict}`);
  await Deno.mkdir("bench/results", { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  await Deno.writeTextFile(`bench/results/${stamp}.md`, lines.join("\n") + "\n");
  await Deno.writeTextFile(`bench/results/${stamp}.json`, JSON.stringify(report, null, 2));
  console.log(`\nwritten: bench/results/${stamp}.md`);
  await Deno.remove(tmp, { recursive: true });
} finally {
  await stopAll();
}

type LoadTarget = "direct" | "bare" | "bareJson" | "bareRecord" | "modelgate";

type Load = (
  target: LoadTarget,
  extra?: Partial<Parameters<typeof hey>[0]>,
) => Promise<LoadResult>;

/**
 * Throughput at c=32 with the CPU each process spent per request meanwhile, then the added
 * latency at half of ModelGate's maximum rate.
 */
async function throughputCases(load: Load, pids: Record<LoadTarget, number>): Promise<void> {
  out();
  out(
    `## Throughput (non-streamed chat, 1 KB prompt, fake backend answering at once, median of ${THROUGHPUT_ROUNDS} rounds)`,
  );
  out();
  out("| case | req/s | p50 ms | p99 ms | errors | CPU ms / request |");
  out("|---|---|---|---|---|---|");
  const max: Record<string, LoadResult & { cpuMs: number }> = {};
  const labels = {
    direct: "direct",
    bare: "bare proxy",
    bareJson: "bare proxy + JSON.parse/stringify of the body (floor)",
    bareRecord: "JSON floor + OpenAI's headers + a KV record and access line per request (floor)",
    modelgate: "ModelGate, full pipeline",
  } as const;
  const order = ["direct", "bare", "bareJson", "bareRecord", "modelgate"] as const;
  // Rounds alternate between the targets and each row is the median round, so a machine that
  // slows down for a few seconds does not decide a ratio; CPU is summed over all rounds.
  const results: Record<string, LoadResult[]> = {};
  const cpu: Record<string, { ms: number; requests: number }> = {};
  for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
    for (const target of order) {
      const before = cpuMs(pids[target]);
      const result = await load(target);
      (cpu[target] ??= { ms: 0, requests: 0 }).ms += cpuMs(pids[target]) - before;
      cpu[target].requests += result.rps * SECONDS;
      (results[target] ??= []).push(result);
    }
  }
  for (const target of order) {
    const byRate = [...results[target]].sort((a, b) => a.rps - b.rps);
    const result = byRate[Math.floor(byRate.length / 2)];
    max[target] = { ...result, cpuMs: cpu[target].ms / cpu[target].requests };
    out(
      `| ${labels[target]} | ${fmt(result.rps, 0)} | ${fmt(result.p50)} | ${fmt(result.p99)} | ${
        results[target].reduce((sum, r) => sum + r.errors, 0)
      } | ${fmt(max[target].cpuMs, 3)} |`,
    );
  }
  const ratio = max.modelgate.rps / max.bare.rps;
  const floors = `the JSON floor: ${
    fmt(max.bareJson.rps / max.bare.rps * 100, 1)
  }%, the recording floor: ${fmt(max.bareRecord.rps / max.bare.rps * 100, 1)}%`;
  out();
  out(`ModelGate / bare proxy throughput: **${fmt(ratio * 100, 1)}%** (${floors})`);
  budget(
    ratio >= 0.7,
    `full pipeline keeps >= 70% of the bare proxy's throughput (${
      fmt(ratio * 100, 1)
    }%; ${floors})`,
  );
  budget(
    max.modelgate.cpuMs <= 0.08,
    `gateway CPU per 1 KB request <= 0.08 ms at full load (${
      fmt(max.modelgate.cpuMs, 3)
    } ms; bare proxy ${fmt(max.bare.cpuMs, 3)}, JSON floor ${
      fmt(max.bareJson.cpuMs, 3)
    }, recording floor ${fmt(max.bareRecord.cpuMs, 3)})`,
  );
  report.throughput = max;

  // Added latency at half of ModelGate's max throughput, same open-loop rate for both.
  const rate = Math.max(10, Math.floor(max.modelgate.rps / 2));
  const workers = 16;
  const paced = { concurrency: workers, qpsPerWorker: Math.max(1, Math.floor(rate / workers)) };
  // The floors at the same rate: what any proxy, and any gateway recording every request, adds.
  const latencyTargets = ["direct", "bare", "bareRecord", "modelgate"] as const;
  const latencyLabels = {
    direct: "direct",
    bare: "bare proxy",
    bareRecord: "recording floor",
    modelgate: "ModelGate",
  } as const;
  const latencyTable = async (options: Parameters<Load>[1]) => {
    const measured = {} as Record<(typeof latencyTargets)[number], LoadResult>;
    for (const target of latencyTargets) measured[target] = await load(target, options);
    out("| case | p50 ms | p99 ms | added p50 | added p99 |");
    out("|---|---|---|---|---|");
    const added = {} as Record<(typeof latencyTargets)[number], { p50: number; p99: number }>;
    for (const target of latencyTargets) {
      const m = measured[target];
      added[target] = { p50: m.p50 - measured.direct.p50, p99: m.p99 - measured.direct.p99 };
      const cells = target === "direct"
        ? "– | –"
        : `${fmt(added[target].p50)} | ${fmt(added[target].p99)}`;
      out(`| ${latencyLabels[target]} | ${fmt(m.p50)} | ${fmt(m.p99)} | ${cells} |`);
    }
    return { measured, added };
  };
  out();
  out(`## Added latency at ~${rate} req/s (half of ModelGate's max)`);
  out();
  const atHalf = await latencyTable(paced);
  const addedP99 = atHalf.added.modelgate.p99;
  budget(
    addedP99 < 5,
    `added p99 < 5 ms at half load (${fmt(addedP99)} ms; at the same rate the bare proxy adds ${
      fmt(atHalf.added.bare.p99)
    }, the recording floor ${fmt(atHalf.added.bareRecord.p99)})`,
  );

  // One request at a time: what the gateway adds to a single request.
  out();
  out("## Added latency, one request at a time");
  out();
  const serial = await latencyTable({ concurrency: 1 });
  const serialAdded = serial.added.modelgate.p50;
  budget(
    serialAdded < 0.3,
    `added p50 < 0.3 ms at concurrency 1 (${fmt(serialAdded)} ms; the bare proxy adds ${
      fmt(serial.added.bare.p50)
    }, the recording floor ${fmt(serial.added.bareRecord.p50)}; hey reports 0.1 ms steps)`,
  );
  report.added = { rate, paced: atHalf.measured, serial: serial.measured };
}

type Targets = Record<
  "direct" | "bare" | "bareMeter" | "modelgate",
  { url: string; headers: Record<string, string> }
>;

async function streamingCases(targets: Targets, gatewayPid: number): Promise<void> {
  out();
  out("## Streaming: time to first token and total (20 chunks, no gap)");
  out();
  out(
    "| concurrency | direct TTFT p50 | metering floor TTFT p50 | ModelGate TTFT p50 | added TTFT | floor adds | direct total p50 | ModelGate total p50 |",
  );
  out("|---|---|---|---|---|---|---|---|");
  const rows: unknown[] = [];
  for (const concurrency of [1, 10, 50]) {
    // One at a time needs many streams for a steady median; the targets take turns.
    const rounds = concurrency === 1 ? 60 : 5;
    const results: Record<"direct" | "bareMeter" | "modelgate", StreamTiming[]> = {
      direct: [],
      bareMeter: [],
      modelgate: [],
    };
    for (let round = 0; round < rounds; round++) {
      for (const target of ["direct", "bareMeter", "modelgate"] as const) {
        const batch = await Promise.all(
          [...Array(concurrency).keys()].map(() =>
            timeStream(targets[target].url, targets[target].headers)
          ),
        );
        // The first streams of a connection pool and a fresh JIT are not counted at c=1.
        if (concurrency > 1 || round >= 10) results[target].push(...batch);
      }
    }
    const median = (target: keyof typeof results) => ({
      ttft: percentile(results[target].map((r) => r.ttft), 0.5),
      total: percentile(results[target].map((r) => r.total), 0.5),
    });
    const direct = median("direct");
    const floor = median("bareMeter");
    const gateway = median("modelgate");
    rows.push({ concurrency, direct, floor, gateway });
    out(
      `| ${concurrency} | ${fmt(direct.ttft)} | ${fmt(floor.ttft)} | ${fmt(gateway.ttft)} | ${
        fmt(gateway.ttft - direct.ttft)
      } | ${fmt(floor.ttft - direct.ttft)} | ${fmt(direct.total)} | ${fmt(gateway.total)} |`,
    );
    if (concurrency === 1) {
      budget(
        gateway.ttft - direct.ttft < 1,
        `streaming adds < 1 ms to TTFT at c=1 (${
          fmt(gateway.ttft - direct.ttft)
        } ms; a bare proxy with one identity TransformStream adds ${
          fmt(floor.ttft - direct.ttft)
        } ms)`,
      );
    }
  }
  report.streaming = rows;
  void gatewayPid;
}

type StreamTiming = Awaited<ReturnType<typeof timeStream>>;

async function isolationCases(tmp: string, targets: Targets): Promise<void> {
  // Chunk gaps: a backend sending 40 chunks 5 ms apart, direct and through ModelGate.
  const paced = await startDeno(["bench/fake_backend.ts", "0", "0", "40", "5"]);
  const pacedUrl = `http://127.0.0.1:${paced.port}/v1/chat/completions`;
  const gaps = async (url: string, headers: Record<string, string>) => {
    const all: number[] = [];
    for (let i = 0; i < 10; i++) all.push(...(await timeStream(url, headers)).gaps);
    return { p50: percentile(all, 0.5), p99: percentile(all, 0.99), max: Math.max(...all) };
  };
  const direct = await gaps(pacedUrl, {});
  const gw = await startModelGate({
    backendUrl: `http://127.0.0.1:${paced.port}`,
    dir: `${tmp}/paced`,
    keyCount: 0,
  });
  const through = await gaps(`${gw.url}/v1/chat/completions`, {
    authorization: `Bearer ${gw.key}`,
  });
  await gw.stop();
  await paced.stop();
  out();
  out("## SSE chunk gaps (backend sends a chunk every 5 ms)");
  out();
  out("| path | gap p50 ms | gap p99 ms | max ms |");
  out("|---|---|---|---|");
  out(`| direct | ${fmt(direct.p50)} | ${fmt(direct.p99)} | ${fmt(direct.max)} |`);
  out(`| ModelGate | ${fmt(through.p50)} | ${fmt(through.p99)} | ${fmt(through.max)} |`);
  budget(
    through.p99 < 30,
    `no ~40 ms Nagle stalls between chunks (p99 gap ${fmt(through.p99)} ms)`,
  );

  // A 1 MB request in flight beside small streams: their TTFT should barely move.
  const big = await Deno.readFile(`${tmp}/prompt-1048576.json`).catch(() => null) ??
    new TextEncoder().encode(
      JSON.stringify({
        model: "bench-model",
        messages: [{ role: "user", content: "x".repeat(1 << 20) }],
      }),
    );
  const ttft = async () => {
    const values: number[] = [];
    for (let i = 0; i < 30; i++) {
      values.push((await timeStream(targets.modelgate.url, targets.modelgate.headers)).ttft);
    }
    return percentile(values, 0.5);
  };
  const alone = await ttft();
  let running = true;
  const heavy = (async () => {
    while (running) {
      const response = await fetch(targets.modelgate.url, {
        method: "POST",
        headers: { ...targets.modelgate.headers, "content-type": "application/json" },
        body: big,
      });
      await response.arrayBuffer();
    }
  })();
  const beside = await ttft();
  running = false;
  await heavy;
  out();
  out("## Small streams beside 1 MB requests in flight");
  out();
  out(`TTFT p50 alone ${fmt(alone)} ms, beside back-to-back 1 MB requests ${fmt(beside)} ms`);
  report.isolation = { direct, through, alone, beside };
}

async function cpuPerRequest(
  tmp: string,
  processes: Record<
    "modelgate" | "bare" | "bareJson" | "bareRecord",
    [Targets["modelgate"], number]
  >,
): Promise<void> {
  out();
  out("## CPU time per request by prompt size (8 requests at a time)");
  out();
  out("| prompt | requests | ModelGate | bare proxy | JSON floor | recording floor |");
  out("|---|---|---|---|---|---|");
  const rows: Record<string, unknown>[] = [];
  for (
    const [label, size, count] of [["1 KB", 1024, 2000], ["100 KB", 100 * 1024, 300], [
      "1 MB",
      1024 * 1024,
      40,
    ]] as const
  ) {
    const file = `${tmp}/prompt-${size}.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        model: "bench-model",
        messages: [{ role: "user", content: "x".repeat(size) }],
      }),
    );
    const payload = await Deno.readFile(file);
    const perRequest: Record<string, number> = {};
    for (const [name, [target, pid]] of Object.entries(processes)) {
      const before = cpuMs(pid);
      for (let i = 0; i < count; i += 8) {
        await Promise.all([...Array(Math.min(8, count - i)).keys()].map(async () => {
          const response = await fetch(target.url, {
            method: "POST",
            headers: { ...target.headers, "content-type": "application/json" },
            body: payload,
          });
          await response.arrayBuffer();
        }));
      }
      perRequest[name] = (cpuMs(pid) - before) / count;
    }
    rows.push({ label, ...perRequest });
    const cell = (name: keyof typeof processes) => fmt(perRequest[name], 3);
    out(
      `| ${label} | ${count} | ${cell("modelgate")} | ${cell("bare")} | ${cell("bareJson")} | ${
        cell("bareRecord")
      } |`,
    );
  }
  report.cpu = rows;
}

async function floodCase(body: string, targets: Targets, backendUrl: string): Promise<void> {
  const served = async () => (await (await fetch(`${backendUrl}/stats`)).json()).served as number;
  const baseline = await hey({
    ...targets.modelgate,
    bodyFile: body,
    seconds: SECONDS,
    concurrency: 8,
    qpsPerWorker: 50,
  });
  const before = await served();
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(
    script,
    `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}'
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
request = function()
  local key = "mg-"
  for i = 1, 43 do local n = math.random(1, 64) key = key .. chars:sub(n, n) end
  wrk.headers["Authorization"] = "Bearer " .. key
  return wrk.format()
end
`,
  );
  const flood = new Deno.Command("wrk", {
    args: ["-t", "1", "-c", "16", "-d", `${SECONDS}s`, "-s", script, targets.modelgate.url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const during = await hey({
    ...targets.modelgate,
    bodyFile: body,
    seconds: SECONDS,
    concurrency: 8,
    qpsPerWorker: 50,
  });
  const floodText = new TextDecoder().decode((await flood).stdout);
  const floodRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(floodText)?.[1] ?? NaN);
  const legit = (await served()) - before;
  await Deno.remove(script);
  out();
  out("## Invalid-key flood beside legitimate traffic (400 req/s legitimate)");
  out();
  out("| | legitimate p50 ms | legitimate p99 ms |");
  out("|---|---|---|");
  out(`| alone | ${fmt(baseline.p50)} | ${fmt(baseline.p99)} |`);
  out(
    `| with a flood of ${fmt(floodRps, 0)} random keys/s | ${fmt(during.p50)} | ${
      fmt(during.p99)
    } |`,
  );
  const expected = Math.round(during.rps * SECONDS);
  out();
  out(
    `Backend saw ${legit} requests during the flood; legitimate requests sent: ~${expected} (none of the flood)`,
  );
  budget(legit <= expected + 50, "no flood request reaches the backend");
  report.flood = { baseline, during, floodRps, legit };
}

/**
 * The same gateway with a small and a large amount of something (models configured, keys
 * stored), taking turns: PASS when the large one keeps over 90% of the small one's throughput.
 */
async function flatIn(
  body: string,
  what: string,
  column: string,
  sizes: [number, number],
  options: (size: number) => BenchGatewayOptions,
): Promise<void> {
  const [small, large] = sizes;
  out();
  out(
    `## Cost per request with ${small} vs ${large} ${what} (median of ${COMPARE_ROUNDS} rounds)`,
  );
  out();
  out(`| ${column} | req/s | p50 ms | p99 ms | CPU ms / request |`);
  out("|---|---|---|---|---|");
  const results = await takingTurns(
    body,
    sizes.map((size) => ({ label: String(size), options: options(size) })),
  );
  for (const { label, result, cpuMs } of results) {
    out(
      `| ${label} | ${fmt(result.rps, 0)} | ${fmt(result.p50)} | ${fmt(result.p99)} | ${
        fmt(cpuMs, 3)
      } |`,
    );
  }
  const ratio = results[1].result.rps / results[0].result.rps;
  budget(
    ratio > 0.9,
    `cost per request does not grow with the number of ${what} (${
      fmt(ratio * 100, 1)
    }% throughput)`,
  );
  report[what] = Object.fromEntries(results.map((r) => [r.label, r]));
}

function modelCountCase(body: string, backendUrl: string, tmp: string): Promise<void> {
  return flatIn(body, "models", "configured models", [1, 500], (count) => ({
    backendUrl,
    dir: `${tmp}/models-${count}`,
    keyCount: 0,
    extraModels: count - 1,
  }));
}

function keyCountCase(body: string, backendUrl: string, tmp: string): Promise<void> {
  return flatIn(body, "keys", "stored keys", [10, KEY_COUNT], (count) => ({
    backendUrl,
    dir: `${tmp}/keys-${count}`,
    keyCount: count,
  }));
}

/** Opens `count` streams to `url` and reads their first chunk; returns the readers. */
async function openStreams(url: string, headers: Record<string, string>, count: number) {
  const open = async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({
        model: "bench-model",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    return reader;
  };
  const readers = [];
  for (let i = 0; i < count; i += 100) {
    readers.push(...await Promise.all([...Array(Math.min(100, count - i)).keys()].map(open)));
  }
  return readers;
}

/** RSS growth per open idle stream of one process, after a warm-up of 50 streams. */
async function growthPerStream(pid: number, url: string, headers: Record<string, string>) {
  const warm = await openStreams(url, headers, 50);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = rssKiB(pid);
  const readers = await openStreams(url, headers, STREAMS);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = rssKiB(pid);
  await Promise.all([...warm, ...readers].map((reader) => reader.cancel().catch(() => {})));
  return { before, after, perStream: (after - before) / STREAMS };
}

async function memoryPerStream(tmp: string): Promise<void> {
  const slow = await startDeno(["bench/fake_backend.ts", "0", "0", "3", "20000"]);
  const backendUrl = `http://127.0.0.1:${slow.port}`;
  const bare = await startDeno(["bench/bare_proxy.ts", "0", backendUrl]);
  const bareResult = await growthPerStream(
    bare.pid,
    `http://127.0.0.1:${bare.port}/v1/chat/completions`,
    {},
  );
  await bare.stop();
  const touched = await startDeno(["bench/bare_proxy.ts", "0", backendUrl, "transform"]);
  const touchedUrl = `http://127.0.0.1:${touched.port}/v1/chat/completions`;
  const touchedResult = await growthPerStream(touched.pid, touchedUrl, {});
  await touched.stop();
  const gateway = await startModelGate({ backendUrl, dir: `${tmp}/streams`, keyCount: 0 });
  const result = await growthPerStream(gateway.pid, `${gateway.url}/v1/chat/completions`, {
    authorization: `Bearer ${gateway.key}`,
  });
  out();
  out(`## Memory per open idle stream (${STREAMS} streams)`);
  out();
  out("| process | RSS before MiB | RSS with streams MiB | KiB per stream |");
  out("|---|---|---|---|");
  out(
    `| bare proxy | ${fmt(bareResult.before / 1024, 1)} | ${fmt(bareResult.after / 1024, 1)} | ${
      fmt(bareResult.perStream, 1)
    } |`,
  );
  out(
    `| bare proxy + identity TransformStream | ${fmt(touchedResult.before / 1024, 1)} | ${
      fmt(touchedResult.after / 1024, 1)
    } | ${fmt(touchedResult.perStream, 1)} |`,
  );
  out(
    `| ModelGate | ${fmt(result.before / 1024, 1)} | ${fmt(result.after / 1024, 1)} | ${
      fmt(result.perStream, 1)
    } |`,
  );
  budget(
    result.perStream <= 1.2 * touchedResult.perStream,
    `memory per open idle stream <= 1.2x the floor of a metering proxy (${
      fmt(result.perStream, 1)
    } KiB vs ${fmt(touchedResult.perStream, 1)} KiB for an identity TransformStream: ${
      fmt(result.perStream / touchedResult.perStream, 2)
    }x)`,
  );
  report.memory = { modelgate: result, bare: bareResult, touched: touchedResult, streams: STREAMS };
  await gateway.stop();
  await slow.stop();
}
async function limiterCost(body: string, backendUrl: string, tmp: string): Promise<void> {
  const redis = await startRedis();
  out();
  out(`## Cost of rate limits and quota (same run, same load, median of ${COMPARE_ROUNDS} rounds)`);
  out();
  out(
    "| key limits | req/s | p50 ms | p99 ms | vs no limits | CPU ms / request (gateway + Redis) |",
  );
  out("|---|---|---|---|---|---|");
  const rates = { rpm: 1e9, burst: 1e8, tpm: 1e12, max_concurrency: 1e6 };
  const contender = (label: string, limits: Record<string, unknown>, redisUrl?: string) => ({
    label,
    options: {
      backendUrl,
      dir: `${tmp}/limits-${label.replace(/\W+/g, "-")}`,
      keyCount: 0,
      limits,
      redisUrl,
    },
    // The Redis server shares the machine's cores: its CPU is part of what a check costs.
    alsoPids: redisUrl ? () => [redis.pid] : undefined,
  });
  let results: TurnResult[];
  try {
    results = await takingTurns(body, [
      contender("none", { allowed_models: ["*"] }),
      contender("rate limits in memory", rates),
      contender("rate limits in Redis", rates, redis.url),
      contender("rate limits in memory + quota", { ...rates, quota_tokens: 1e15 }),
    ]);
  } finally {
    await redis.close();
  }
  const rows = Object.fromEntries(results.map((r) => [r.label, r]));
  for (const { label, result, cpuMs } of results) {
    out(
      `| ${label} | ${fmt(result.rps, 0)} | ${fmt(result.p50)} | ${fmt(result.p99)} | ${
        fmt(result.rps / rows.none.result.rps * 100, 1)
      }% | ${fmt(cpuMs, 3)} |`,
    );
  }
  const redisShare = rows["rate limits in Redis"].result.rps /
    rows["rate limits in memory"].result.rps;
  budget(
    redisShare >= 0.9,
    `rate limits in Redis keep >= 90% of the same limits in memory (${fmt(redisShare * 100, 1)}%)`,
  );
  report.limits = rows;
}

/** One gateway of a comparison, and the processes whose CPU counts as its cost. */
interface Contender {
  label: string;
  options: BenchGatewayOptions;
  /** Other processes a request costs CPU in (e.g. the Redis server). */
  alsoPids?: () => number[];
}

/** What {@linkcode takingTurns} measured of one contender. */
interface TurnResult {
  label: string;
  /** The median round by throughput. */
  result: LoadResult;
  /** CPU per request over all rounds, its own and `alsoPids`'. */
  cpuMs: number;
}

/**
 * Starts one gateway per contender, then loads them in rounds that take turns, so a host that
 * slows down for a while slows all alike; each contender's median round is kept.
 */
async function takingTurns(body: string, contenders: Contender[]): Promise<TurnResult[]> {
  const gateways: BenchGateway[] = [];
  try {
    for (const { label, options } of contenders) {
      const started = performance.now();
      gateways.push(await startModelGate(options));
      console.error(`bench: ${label} ready in ${fmt((performance.now() - started) / 1000, 1)} s`);
    }
    const targets = gateways.map((gateway) => ({
      url: `${gateway.url}/v1/chat/completions`,
      headers: { authorization: `Bearer ${gateway.key}` },
      bodyFile: body,
      concurrency: CONCURRENCY,
    }));
    for (const target of targets) await hey({ ...target, seconds: 2 });
    const runs: LoadResult[][] = contenders.map(() => []);
    const cpu = contenders.map(() => ({ ms: 0, requests: 0 }));
    for (let round = 0; round < COMPARE_ROUNDS; round++) {
      for (const [i, target] of targets.entries()) {
        const pids = [gateways[i].pid, ...(contenders[i].alsoPids?.() ?? [])];
        const before = pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
        const result = await hey({ ...target, seconds: SECONDS });
        cpu[i].ms += pids.reduce((sum, pid) => sum + cpuMs(pid), 0) - before;
        cpu[i].requests += result.rps * SECONDS;
        runs[i].push(result);
      }
    }
    return contenders.map(({ label }, i) => {
      const byRate = [...runs[i]].sort((a, b) => a.rps - b.rps);
      return {
        label,
        result: byRate[Math.floor(byRate.length / 2)],
        cpuMs: cpu[i].ms / cpu[i].requests,
      };
    });
  } finally {
    for (const gateway of gateways) await gateway.stop();
  }
}
