/**
 * A connect timeout for fetch, which has none of its own. Before calling a backend that has not
 * answered recently (so no pooled connection is likely), one TCP connection is opened with a
 * deadline: a dead host then fails in `connect_ms` instead of waiting out `first_byte_ms`, which
 * must stay long for models that are loading. Warm paths skip the probe entirely.
 */
import { upstreamError, upstreamTimeout } from "../src/errors.ts";
import type { BackendConfig } from "./types.ts";

/** Opens a TCP connection; injectable for tests. */
export type Connector = (options: { hostname: string; port: number }) => Promise<{ close(): void }>;

/** Options for {@linkcode createConnectProbe}. */
export interface ConnectProbeOptions {
  connect?: Connector;
  now?: () => number;
  /** How long after a successful call the backend counts as warm, in ms. */
  warmMs?: number;
}

/** Checks reachability of one backend before cold calls. */
export interface ConnectProbe {
  /** Resolves when the backend accepted a connection (or is warm); throws 502/504 otherwise. */
  ensure(): Promise<void>;
  /** Records a successful call, keeping the backend warm. */
  markOk(): void;
}

/** Builds the probe for one backend. Skipped when a proxy is configured for fetch. */
export function createConnectProbe(
  config: BackendConfig,
  options: ConnectProbeOptions = {},
): ConnectProbe {
  const connect: Connector = options.connect ?? ((o) => Deno.connect(o));
  const now = options.now ?? Date.now;
  const warmMs = options.warmMs ?? 30_000;
  const url = new URL(config.baseUrl);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  const viaProxy = usesProxy();
  let lastOk = -Infinity;
  let inFlight: Promise<void> | null = null;

  const probe = async (): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const attempt = connect({ hostname, port });
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("connect timeout")), config.timeouts.connectMs);
    });
    try {
      const conn = await Promise.race([attempt, deadline]);
      conn.close();
      lastOk = now();
    } catch (err) {
      // A connection that completes after the deadline is closed as soon as it arrives.
      attempt.then((late) => late.close(), () => {});
      if ((err as Error).message === "connect timeout") {
        throw upstreamTimeout(`Backend "${config.name}" did not accept a connection in time`, err);
      }
      throw upstreamError(`Backend "${config.name}" could not be reached`, err);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    ensure() {
      if (viaProxy || now() - lastOk < warmMs) return Promise.resolve();
      inFlight ??= probe().finally(() => {
        inFlight = null;
      });
      return inFlight;
    },
    markOk() {
      lastOk = now();
    },
  };
}

function usesProxy(): boolean {
  try {
    return ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"].some((name) =>
      Boolean(Deno.env.get(name))
    );
  } catch {
    return false;
  }
}
