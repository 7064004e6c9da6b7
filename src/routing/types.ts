/** The router's contract with the proxy handler, the admin API and /metrics. */
import type { Adapter, BackendType } from "../../adapters/types.ts";
import type { GroupPolicy, Tier } from "./policy.ts";

/** One attempt's target. */
export interface Target {
  adapter: Adapter;
  /**
   * The canonical model that serves the request (after group and global aliases, or the
   * fallback's name): used for pricing, the ledger and metrics.
   */
  model: string;
  /** The name the backend knows it by. */
  upstreamModel: string;
}

/** What the router counts while it routes one request, readable however the request ends. */
export interface RouteProgress {
  /** Attempts sent to a backend so far. */
  attempts: number;
  /** Time spent waiting in a queue for a free slot, in ms. */
  queuedMs: number;
}

/** Where a request for one model name of one group may go: found once per request. */
export interface RoutePlan {
  /**
   * The canonical model the name stands for in the group (group aliases, then global aliases),
   * whether or not anything serves it: used to check a key's allowed_models.
   */
  model: string;
  /** The group's routing rules. */
  group: GroupPolicy;
  /** The model, then its fallbacks, each with the backends the group may use; empty: not served. */
  tiers: readonly Tier[];
}

/** One client request to route. */
export interface RouteRequest {
  /** The model name the client sent. */
  model: string;
  /** Aborted when the client leaves or the gateway stops: a queued request leaves the queue. */
  signal: AbortSignal;
  /** Filled in as the request is routed, also when routing ends in an error. */
  progress: RouteProgress;
}

/** How a response that already started ended, as the handler tells the router. */
export interface RouteEnd {
  /** The response failed after its first byte (stats only; never counts toward ejection). */
  failed: boolean;
  latencyMs: number;
}

/** A successful attempt and the backend slot it holds. */
export interface Routed<T> {
  value: T;
  target: Target;
  /**
   * Frees the backend slot; the handler calls it exactly once when the response or stream
   * ends (double calls are harmless).
   */
  release(end: RouteEnd): void;
}

/** A model as `GET /v1/models` lists it. */
export interface ListedModel {
  id: string;
  created: number;
  owned_by: string;
}

/** Whether a backend currently receives requests. */
export type BackendState = "healthy" | "ejected";

/** One backend as the admin API, the UI and the CLI show it. */
export interface BackendView {
  name: string;
  type: BackendType;
  state: BackendState;
  /** Same as `state === "healthy"` (kept for older scripts). */
  healthy: boolean;
  in_flight: number;
  /** Null when unlimited. */
  max_concurrency: number | null;
  weight: number;
  /** Requests waiting in a queue that could use this backend. */
  queued: number;
  consecutive_failures: number;
  /** ISO time the current ejection ends, or null. */
  ejected_until: string | null;
  /** Why the last attempt or probe failed (admin only). */
  last_error: string | null;
  models: string[];
  recent: { requests: number; errors: number; p50_ms: number | null; p95_ms: number | null };
}

/** One model as the admin API shows it. */
export interface ModelView {
  id: string;
  backends: string[];
  aliases: string[];
  fallbacks: string[];
  queued: number;
  created: number;
}

/** Outcome of one attempt, as `modelgate_backend_attempts_total{result}` counts it. */
export type AttemptResult =
  | "success"
  | "upstream_error"
  | "upstream_timeout"
  | "rate_limited"
  | "client_error"
  | "cancelled";

/** Schedules requests over the fleet: catalog, policy, dispatch and health behind one face. */
export interface Router {
  /** What GET /v1/models shows a key of this group (group aliases included). */
  list(group: string): ListedModel[];
  /**
   * The plan for a model name sent by a key of this group (`group`: key.group, "default" when
   * unset). Its canonical model lets a key's allowed_models be checked before anything reveals
   * whether the model exists; its tiers are empty when no backend the group may use serves the
   * model or one of its fallbacks.
   */
  plan(model: string, group: string): RoutePlan;
  /**
   * Routes one request along its plan: slot or queue, attempts with failover, then fallbacks.
   * `attempt` sends to one target and resolves once response headers arrived (2xx), or throws a
   * GatewayError. Another candidate is tried when the error's code is "upstream_error" or
   * "upstream_timeout" or it is the backend's 429; any other error is thrown at once. Throws
   * 404 model_not_found (nothing serves the model or its fallbacks for this group), 503
   * no_backend_available with Retry-After (nothing usable, queue full or wait ended), or the
   * last attempt's error.
   */
  route<T>(
    plan: RoutePlan,
    request: RouteRequest,
    attempt: (target: Target, signal: AbortSignal) => Promise<T>,
  ): Promise<Routed<T>>;
  /** Per backend, in config order. */
  snapshot(): BackendView[];
  /** Every model some backend serves, with its backends, aliases, fallbacks and queue. */
  models(): ModelView[];
  /**
   * Waiting requests per model: every model some backend serves, 0 when its queue is empty (so
   * the gauge shows a drained queue as 0 rather than dropping it).
   */
  queueDepths(): Map<string, number>;
  /** Ready when at least one backend is not ejected. */
  ready(): boolean;
  /** Probes the backends once (discovery and health), then keeps probing in the background. */
  start(): Promise<void>;
  /** Stops probing; resolves once probes in flight have ended. */
  stop(): Promise<void>;
}
