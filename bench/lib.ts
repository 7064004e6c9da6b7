/** Benchmark plumbing: child processes that are always stopped, load generators, measurements. */

/** A child process the harness started. */
export interface Child {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const children = new Set<Deno.ChildProcess>();

/** Stops every child still running (also called on Ctrl-C and on errors). */
export async function stopAll(): Promise<void> {
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status.catch(() => {});
  }
  children.clear();
}

/** Starts `deno run` on a script that prints `READY <port>`, and waits for that line. */
export async function startDeno(args: string[], env: Record<string, string> = {}): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ...args],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  children.add(child);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!/READY (\d+)/.test(text) && !/listening.*:(\d+)"/.test(text)) {
    if (Date.now() > deadline) throw new Error(`${args.join(" ")} did not start: ${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`${args.join(" ")} exited: ${text}`);
    text += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  const port = Number((/READY (\d+)/.exec(text) ?? /listening.*:(\d+)"/.exec(text))![1]);
  return {
    pid: child.pid,
    port,
    async stop() {
      if (!children.has(child)) return;
      children.delete(child);
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** A free loopback port. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** What one load run measured. */
export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Options for {@linkcode hey}. */
export interface HeyOptions {
  url: string;
  bodyFile: string;
  seconds: number;
  concurrency: number;
  headers?: Record<string, string>;
  /** Requests per second per worker (open-loop rate); omit for as fast as possible. */
  qpsPerWorker?: number;
}

/** Runs `hey` (Debian package) and parses its summary; latencies in ms. */
export async function hey(options: HeyOptions): Promise<LoadResult> {
  const args = ["-z", `${options.seconds}s`, "-c", String(options.concurrency), "-m", "POST"];
  args.push("-T", "application/json", "-D", options.bodyFile, "-disable-compression");
  if (options.qpsPerWorker) args.push("-q", String(options.qpsPerWorker));
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    args.push("-H", `${name}: ${value}`);
  }
  args.push(options.url);
  const output = await new Deno.Command("hey", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(output.stdout);
  const number = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
  const codes = [...text.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)];
  const errors = codes.filter(([, code]) => code !== "200").reduce(
    (sum, [, , count]) => sum + Number(count),
    0,
  ) +
    (/Error distribution:[\s\S]*?\[(\d+)\]/.test(text)
      ? number(/Error distribution:[\s\S]*?\[(\d+)\]/)
      : 0);
  return {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50: number(/50%+ in ([\d.]+) secs/) * 1000,
    p99: number(/99%+ in ([\d.]+) secs/) * 1000,
    errors,
  };
}

/** Resident memory of a process in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** CPU time (user + system) of a process in ms. */
export function cpuMs(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of /proc/pid/stat, in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Percentile of a sorted-on-demand list of numbers. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Streams one chat completion; returns ms to the first data chunk, total, and chunk gaps. */
export async function timeStream(
  url: string,
  headers: Record<string, string>,
): Promise<{ ttft: number; total: number; gaps: number[] }> {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({
      model: "bench-model",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }),
  });
  const reader = response.body!.getReader();
  let ttft = NaN;
  let last = started;
  const gaps: number[] = [];
  while (true) {
    const { done } = await reader.read();
    const now = performance.now();
    if (done) break;
    if (Number.isNaN(ttft)) ttft = now - started;
    else gaps.push(now - last);
    last = now;
  }
  return { ttft, total: performance.now() - started, gaps };
}

/** Formats a number for the results table. */
export function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}
