/** Starts the gateway: config -> KV -> adapters -> registry -> app -> Deno.serve; stops it cleanly. */
import { createAdapter } from "../adapters/mod.ts";
import { resolveAdminKeyHash } from "./admin_key.ts";
import { createApp } from "./app.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { shuttingDown } from "./errors.ts";
import { Metrics } from "./metrics.ts";
import { PendingWork } from "./pending.ts";
import { KeyDirectory } from "./pipeline/key_directory.ts";
import { createRateLimiter } from "./ratelimit/resilient.ts";
import { ModelRegistry } from "./routing/registry.ts";
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
  const adapters = config.backends.map((backend) => createAdapter(backend, { fetch: fetchFn }));
  const registry = new ModelRegistry({ adapters, policies: config.models, log });
  await registry.start(config.discovery.intervalSeconds);
  const pending = new PendingWork();
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
    registry,
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
    : {};
  const server = Deno.serve({
    hostname: config.server.host,
    port: config.server.port,
    ...tls,
    onListen() {},
  }, (request, info) => app.fetch(request, info));
  const address = server.addr as Deno.NetAddr;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const url = `${config.server.tls ? "https" : "http"}://${host}:${address.port}`;
  let stopping: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    keys,
    metrics,
    shutdown() {
      stopping ??= (async () => {
        registry.stop();
        // Wait for in-flight requests, but not for ever: after the deadline open streams end with
        // an error event and waiting requests get 503, so their usage is still written below.
        const deadline = setTimeout(
          () => stop.abort(shuttingDown()),
          config.server.shutdownTimeoutMs,
        );
        await server.shutdown();
        clearTimeout(deadline);
        await pending.drain();
        await broker.close();
        await ledger.close();
        await limiter.close();
        if (!options.kv) kv.close();
      })();
      return stopping;
    },
    finished: server.finished,
  };
}
