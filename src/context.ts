/** What the middleware chain learns about one request, typed for Hono's context. */
import type { Usage } from "../adapters/types.ts";
import type { FormatName } from "./formats/types.ts";
import type { IpBytes } from "./net/ip.ts";
import type { KeyRecord } from "./store/model.ts";

/** How a request that reached routing ended. */
export type Outcome = "completed" | "client_cancelled" | "upstream_error" | "timeout" | "error";

/** Everything known about a finished request: the input of quota settlement and the ledger. */
export interface Completion {
  requestId: string;
  /** The id of the request's API key, or null when none was accepted. */
  keyId: string | null;
  /** The client's wire format; null for requests that never reached a proxied endpoint. */
  endpoint: FormatName | null;
  /** The model that served the request (after aliases and fallbacks), or the one asked for. */
  model: string;
  /** The model name the client used. */
  requestedModel: string;
  /** Backends tried for this request (0 when none was reached). */
  attempts: number;
  /** Time spent waiting for a free backend slot, in ms. */
  queuedMs: number;
  /** The backend that served it, or null when none was reached. */
  backend: string | null;
  stream: boolean;
  status: number;
  outcome: Outcome;
  /** Final token counts: reported by the backend, or estimated when it never said. */
  usage: Usage;
  usageReported: boolean;
  latencyMs: number;
  ttftMs: number | null;
  clientIp: string;
}

/** Runs when a request is over (response sent, stream ended or cancelled). */
export type Finisher = (completion: Completion) => void | Promise<void>;

/** One /v1 request in flight: filled in as the pipeline learns more, finished exactly once. */
export interface Exchange {
  requestId: string;
  /** The id of the API key, once authenticated. */
  keyId: string | null;
  /** `now()` when the request arrived, in ms. */
  startedAt: number;
  endpoint: FormatName | null;
  /** The model name the client used. */
  model: string | null;
  /** The model that serves it, once routed. */
  servedModel: string | null;
  backend: string | null;
  attempts: number;
  queuedMs: number;
  stream: boolean;
  /** A streamed response is being sent; its meter finishes the exchange. */
  streaming: boolean;
  /** Called in order once the request is over. */
  finishers: Finisher[];
  finished: boolean;
}

/** Connection info Deno.serve passes to the app as Hono's `c.env`. */
export interface ServeBindings {
  remoteAddr?: { hostname: string; port: number };
}

/** Hono environment of the gateway's routes. */
export interface GatewayEnv {
  Bindings: ServeBindings;
  Variables: {
    clientIp: string;
    clientIpBytes: IpBytes | null;
    /** Parsed JSON body of a /v1 POST request. */
    body: Record<string, unknown>;
    exchange: Exchange;
    /** The API key of the request, once authenticated. */
    key: KeyRecord;
  };
}
