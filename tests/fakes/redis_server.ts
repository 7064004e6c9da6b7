/** A real `redis-server` on a free loopback port, started and stopped by the test that needs it. */

/** A running Redis the test controls. */
export interface TestRedis {
  url: string;
  port: number;
  /** The server's process id while it runs (for benchmarks reading its CPU time), else 0. */
  readonly pid: number;
  /** Stops the server (the port stays reserved for restart). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  close(): Promise<void>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function answersPing(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(16);
      const read = await conn.read(buffer);
      return read !== null &&
        new TextDecoder().decode(buffer.subarray(0, read)).startsWith("+PONG");
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

/** Starts redis-server; fails clearly when it is not installed (CI installs it). */
export async function startRedis(): Promise<TestRedis> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "modelgate-redis-" });
  let child: Deno.ChildProcess | null = null;
  const start = async () => {
    try {
      child = new Deno.Command("redis-server", {
        args: [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (err) {
      throw new Error(
        `redis-server could not be started (apt-get install redis-server): ${
          (err as Error).message
        }`,
      );
    }
    const until = Date.now() + 5000;
    while (!(await answersPing(port))) {
      if (Date.now() > until) throw new Error("redis-server did not answer PING within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = async () => {
    if (!child) return;
    const running = child;
    child = null;
    running.kill("SIGTERM");
    await running.status;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return (child as Deno.ChildProcess | null)?.pid ?? 0;
    },
    stop,
    start,
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
