/** Starts the gateway: config -> KV -> adapters -> router -> app -> HTTP; stops it cleanly. */
import { createAdapter } from "../adapters/mod.ts";
import { createRedactor } from "../adapters/redact.ts";
import { resolveAdminKeyHash } from "./admin_key.ts";
import { createApp } from "./app.ts";
import { serveResilient } from "./http/listener.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { shuttingDown } from "./errors.ts";
import { Metrics } from "./metrics.ts";
import { PendingWork } from "./pending.ts";
import { KeyDirectory } from "./pipeline/key_directory.ts";
import { createRateLimiter } from "./ratelimit/resilient.ts";
import { type Clock, systemClock } from "./routing/clock.ts";
import type { Router } from "./routing/types.ts";
import { createRouter } from "./routing/router.ts";
import { KeyStore } from "./store/key_store.ts";
import { Ledger } from "./store/ledger.ts";
import { QuotaBroker } from "./store/quota_broker.ts";
import { openKv } from "./store/open_kv.ts";

/** A running gateway. */
export interface RunningGateway {
  /** The bound address, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  keys: KeyStore;
  metrics: Metrics;
  router: Router;
  /** Answers one request in-process, as the server would (benchmarks of the pipeline). */
  handle(
    request: Request,
    info: { remoteAddr: { hostname: string; port: number } },
  ): Response | Promise<Response>;
  /** Stops accepting, lets in-flight requests finish, writes what is pending, closes KV. */
  shutdown(): Promise<void>;
  finished: Promise<void>;
}

/** Options for {@linkcode startGateway}. */
export interface StartOptions {
  config: Config;
  log: Logger;
  fetch?: typeof fetch;
  now?: () => number;
  /** An open KV to use instead of `storage.kv` (the caller closes it). */
  kv?: Deno.Kv;
  /** The router's clock and timers (probes, ejections, queue waits); the real one by default. */
  routingClock?: Clock;
  /** The router's random source (tie-breaks, weighted choice); Math.random by default. */
  routingRandom?: () => number;
  /** Test-only: the clock the Redis limiter scripts use instead of Redis TIME. */
  redisClock?: () => number;
  /** Receives the generated admin key line on first start (stdout by default). */
  print?: (line: string) => void;
}

/** Builds and serves the gateway described by a config. */
export async function startGateway(options: StartOptions): Promise<RunningGateway> {
  const { config, log } = options;
  const now = options.now ?? Date.now;
  const kv = options.kv ?? await openKv(config.storage.kv);
  const keys = new KeyStore({ kv, now });
  const metrics = new Metrics();
  const ledger = new Ledger({
    kv,
    retentionDays: config.storage.usageRetentionDays,
    log,
    metrics,
    now,
    // A stop keeps trying to write the queue while KV does not answer, within the stop's bound.
    closeTimeoutMs: Math.min(10_000, config.server.shutdownTimeoutMs),
  });
  const broker = new QuotaBroker({
    kv,
    now,
    log,
    metrics,
    leaseTtlMs: config.quota.leaseTtlSeconds * 1000,
  });
  const directory = new KeyDirectory({ store: keys, log, now });
  await directory.start();
  const adminKeyHash = await resolveAdminKeyHash(kv, config.admin.apiKey, log, options.print);
  const fetchFn = options.fetch ?? fetch;
  const adapterDeps = {
    fetch: fetchFn,
    maxResponseBytes: config.server.maxResponseBytes,
    redact: createRedactor(config.backends),
  };
  const adapters = config.backends.map((backend) => createAdapter(backend, adapterDeps));
  for (const warning of config.warnings) log.warn(warning);
  const pending = new PendingWork();
  const clock = options.routingClock ??
    (options.now ? { ...systemClock, now: options.now } : undefined);
  const router = createRouter({
    adapters,
    config,
    log,
    metrics,
    clock,
    random: options.routingRandom,
  });
  await router.start();
  const limiter = createRateLimiter({
    redisUrl: config.redis.url,
    onError: config.redis.onError,
    log,
    metrics,
    now,
    redisClock: options.redisClock,
  });
  // Serve even if Redis is down at start: `redis.on_error` decides until it comes back.
  await limiter.ready?.(2000);
  const stop = new AbortController();
  const app = createApp({
    stop: stop.signal,
    config,
    router,
    keys,
    ledger,
    broker,
    directory,
    limiter,
    adminKeyHash,
    log,
    pending,
    metrics,
    now,
  });
  const tls = config.server.tls
    ? {
      cert: await Deno.readTextFile(config.server.tls.certFile),
      key: await Deno.readTextFile(config.server.tls.keyFile),
    }
    : undefined;
  const server = serveResilient({
    hostname: config.server.host,
    port: config.server.port,
    tls,
    handler: (request, info) => app.fetch(request, info),
    log,
    metrics,
  });
  const address = server.addr;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const url = `${config.server.tls ? "https" : "http"}://${host}:${address.port}`;
  let stopping: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    keys,
    metrics,
    router,
    handle: (request, info) => app.fetch(request, info),
    shutdown() {
      stopping ??= (async () => {
        const probes = router.stop();
        // Wait for in-flight requests, but not for ever: after the deadline open streams end with
        // an error event and waiting requests get 503, so their usage is still written below.
        const deadline = setTimeout(
          () => stop.abort(shuttingDown()),
          config.server.shutdownTimeoutMs,
        );
        await server.shutdown();
        clearTimeout(deadline);
        await probes;
        await pending.drain();
        // Each store is closed whatever the others do: a KV that is away must not keep the
        // ledger from writing what it can, nor shutdown from finishing.
        const close = async (what: string, step: () => Promise<void> | void) => {
          try {
            await step();
          } catch (err) {
            log.error("shutdown step failed", { step: what, error: (err as Error).message });
          }
        };
        await close("quota", () => broker.close());
        await close("ledger", () => ledger.close());
        await close("rate limits", () => limiter.close());
        if (!options.kv) await close("kv", () => kv.close());
      })();
      return stopping;
    },
    finished: server.finished,
  };
}
