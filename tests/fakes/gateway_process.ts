/**
 * The gateway as its own process (`main.ts serve`), for what only a process shows: its memory,
 * its file descriptors, whether it is still alive, what a `kill -9` leaves behind. Listens on a
 * free loopback port; KV in memory unless a file is given.
 */
import { ADMIN_KEY } from "../helpers.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A running gateway process. */
export interface GatewayProcess {
  url: string;
  pid: number;
  /** Log lines (JSON) the process wrote to stderr so far. */
  logs: string[];
  /** Resident memory now, in KiB (VmRSS). */
  rssKiB(): Promise<number>;
  /** Whether the process has not exited. */
  alive(): boolean;
  /** Stops it with SIGTERM (or kills it with SIGKILL) and waits for its exit code. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<number>;
}

/** Options for {@linkcode startGatewayProcess}. */
export interface GatewayProcessOptions {
  /** Soft and hard limit of open file descriptors (`prlimit --nofile`). */
  nofile?: number;
  /** A KV file (shared with other instances); in memory by default. */
  kv?: string;
}

/** Starts `main.ts serve` with the YAML given (plus host, port 0, admin key, KV). */
export async function startGatewayProcess(
  yaml: string,
  options: GatewayProcessOptions = {},
): Promise<GatewayProcess> {
  const config = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    config,
    `server:\n  host: 127.0.0.1\n  port: 0\nadmin:\n  api_key: ${ADMIN_KEY}\nstorage:\n  kv: ${
      JSON.stringify(options.kv ?? ":memory:")
    }\n${yaml}`,
  );
  const deno = [Deno.execPath(), "run", "--allow-all", MAIN, "serve", "--config", config];
  const [command, ...args] = options.nofile
    ? ["prlimit", `--nofile=${options.nofile}:${options.nofile}`, "--", ...deno]
    : deno;
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const logs: string[] = [];
  const listening = Promise.withResolvers<string>();
  const reading = (async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter());
    for await (const line of lines) {
      logs.push(line);
      if (line.includes('"modelgate listening"')) listening.resolve(JSON.parse(line).url);
    }
    listening.reject(new Error(`the gateway exited before listening:\n${logs.join("\n")}`));
  })();
  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
    if (!exited) child.kill(signal);
    const { code } = await status;
    await reading;
    await Deno.remove(config).catch(() => {});
    return code;
  };
  let url: string;
  try {
    url = await listening.promise;
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    pid: child.pid,
    logs,
    alive: () => !exited,
    stop,
    async rssKiB() {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
    },
  };
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(text, controller) {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      for (const line of lines) controller.enqueue(line);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}
