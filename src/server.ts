/** Starts the gateway: config -> adapters -> registry -> app -> Deno.serve, and stops it cleanly. */
import { createAdapter } from "../adapters/mod.ts";
import { createApp } from "./app.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { ModelRegistry } from "./routing/registry.ts";

/** A running gateway. */
export interface RunningGateway {
  /** The bound address, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish, then releases everything. */
  shutdown(): Promise<void>;
  finished: Promise<void>;
}

/** Options for {@linkcode startGateway}. */
export interface StartOptions {
  config: Config;
  log: Logger;
  fetch?: typeof fetch;
}

/** Builds and serves the gateway described by a config. */
export async function startGateway(options: StartOptions): Promise<RunningGateway> {
  const { config, log } = options;
  const fetchFn = options.fetch ?? fetch;
  const adapters = config.backends.map((backend) => createAdapter(backend, { fetch: fetchFn }));
  const registry = new ModelRegistry({ adapters, policies: config.models, log });
  await registry.start(config.discovery.intervalSeconds);
  const app = createApp({ config, registry, log });
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
  return {
    url,
    port: address.port,
    async shutdown() {
      registry.stop();
      await server.shutdown();
    },
    finished: server.finished,
  };
}
