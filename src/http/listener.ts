/**
 * Deno.serve that keeps serving when accepting a connection fails.
 *
 * On Deno 2.9 an accept error, above all "Too many open files" (EMFILE: descriptors exhausted,
 * e.g. by connections that never send their headers), ends Deno.serve's accept loop: `finished`
 * rejects and the listening socket closes, while connections already accepted are still served.
 * So the failed server is retired with a graceful shutdown, which lets its in-flight requests and
 * streams finish but closes its idle connections (those with no request, or half a header) and
 * so gives their descriptors back; then a new server listens on the same address. A listen that
 * fails (descriptors still exhausted) is retried with a growing pause until it succeeds.
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";

/** Options for {@linkcode serveResilient}. */
export interface ResilientServeOptions {
  hostname: string;
  port: number;
  /** PEM certificate and key for HTTPS. */
  tls?: { cert: string; key: string };
  handler: Deno.ServeHandler<Deno.NetAddr>;
  log: Logger;
  metrics: Metrics;
  /** First and longest pause between attempts to listen again, in ms. */
  retryMs?: { min: number; max: number };
}

/** A server that outlives accept failures. */
export interface ResilientServer {
  /** The bound address (the same after every restart). */
  addr: Deno.NetAddr;
  /** Stops listening and waits for every request in flight, on current and retired servers. */
  shutdown(): Promise<void>;
  /** Settles when {@linkcode ResilientServer.shutdown} has finished; never rejects. */
  finished: Promise<void>;
}

const LISTENER_ERRORS = "modelgate_listener_errors_total";

/** Serves `handler` on an address and listens again whenever accepting fails. */
export function serveResilient(options: ResilientServeOptions): ResilientServer {
  const { log, metrics } = options;
  const retry = options.retryMs ?? { min: 50, max: 1000 };
  metrics.describe(
    LISTENER_ERRORS,
    "Failures to accept a connection or to listen again (phase), e.g. out of file descriptors",
  );
  const retiring = new Set<Promise<void>>();
  let stopping = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  const stopped = Promise.withResolvers<void>();

  const listen = (port: number) => {
    const server = Deno.serve({
      hostname: options.hostname,
      port,
      ...options.tls,
      onListen() {},
    }, options.handler);
    server.finished.catch((err) => acceptFailed(server, err));
    return server;
  };
  let current = listen(options.port);
  const addr = current.addr;

  function acceptFailed(server: Deno.HttpServer<Deno.NetAddr>, err: unknown) {
    if (stopping) return;
    metrics.inc(LISTENER_ERRORS, { phase: "accept" });
    log.error(`accept failed: ${describe(err)}`, {
      action: "closing idle connections, listening again",
    });
    // Bounded: a retired server lasts only while a request it accepted is still in flight.
    const retired = server.shutdown().catch(() => {});
    retiring.add(retired);
    retired.finally(() => retiring.delete(retired));
    listenAgain(retry.min);
  }

  function listenAgain(pauseMs: number) {
    retryTimer = undefined;
    if (stopping) return;
    try {
      current = listen(addr.port);
      log.info("listening again", { port: addr.port });
    } catch (err) {
      metrics.inc(LISTENER_ERRORS, { phase: "listen" });
      log.warn(`listen failed: ${describe(err)}`, { retry_ms: pauseMs });
      retryTimer = setTimeout(() => listenAgain(Math.min(pauseMs * 2, retry.max)), pauseMs);
    }
  }

  return {
    addr,
    finished: stopped.promise,
    async shutdown() {
      if (!stopping) {
        stopping = true;
        clearTimeout(retryTimer);
        // After a failed listen `current` is a server already retired: shutting it down again
        // is harmless.
        await Promise.all([current.shutdown().catch(() => {}), ...retiring]);
        stopped.resolve();
      }
      await stopped.promise;
    },
  };
}

/** "too many open files" for EMFILE/ENFILE, else the error's own message. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /too many open files|os error 2[34]\b/i.test(message) ? "too many open files" : message;
}
