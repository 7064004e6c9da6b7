/** Handlers for /v1/*: validate, route, call the adapter, meter the answer. Thin on purpose. */
import type { Context, Handler } from "hono";
import type { Endpoint, Usage } from "../../adapters/types.ts";
import type { GatewayEnv } from "../context.ts";
import type { Logger } from "../log.ts";
import type { ModelRegistry } from "../routing/registry.ts";
import { estimatePromptTokens } from "../usage/estimate.ts";
import { meterStream, type StreamSummary } from "../usage/meter.ts";
import { type ExchangeOptions, finish, finishExchange } from "./exchange.ts";
import { type ProxyRequest, validateBody } from "./validate.ts";
import type { PendingWork } from "../pending.ts";
import type { BackendStats } from "../routing/backend_stats.ts";
import type { Route } from "../routing/registry.ts";

/** What the proxy handlers need. */
export interface ProxyDeps {
  registry: ModelRegistry;
  now: () => number;
  log: Logger;
  pending?: PendingWork;
  /** In-flight and recent numbers per backend. */
  stats?: BackendStats;
  /** Aborted when shutdown stops waiting: ends open streams and upstream waits cleanly. */
  stop?: AbortSignal;
  /** Model used when a request names none (a key's default model). */
  defaultModel?: (c: Context<GatewayEnv>) => string | null;
  /**
   * Runs after validation and routing, before the backend is called: access checks and quota
   * reservation. It throws to refuse; what it acquires it releases through an exchange finisher.
   */
  beforeSend?: (c: Context<GatewayEnv>, admission: Admission) => Promise<void> | void;
}

/** What the pipeline knows about a request about to be sent. */
export interface Admission {
  endpoint: Endpoint;
  request: ProxyRequest;
  body: Record<string, unknown>;
  route: Route;
}

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};

/** The handler of one proxied endpoint. */
export function proxyEndpoint(endpoint: Endpoint, deps: ProxyDeps): Handler<GatewayEnv> {
  const options: ExchangeOptions = { now: deps.now, log: deps.log, pending: deps.pending };
  return async function proxy(c) {
    const body = c.get("body");
    const ex = c.get("exchange");
    const request = validateBody(endpoint, body, deps.defaultModel?.(c) ?? null);
    ex.endpoint = endpoint;
    ex.model = request.model;
    ex.stream = request.stream;
    const route = deps.registry.resolve(request.model);
    await deps.beforeSend?.(c, { endpoint, request, body, route });
    // From here on the request counts as sent: it gets a ledger record whatever happens.
    const backend = route.adapter.config.name;
    ex.backend = backend;
    if (deps.stats) {
      const stats = deps.stats;
      stats.start(backend);
      ex.finishers.push((done) => stats.end(backend, done.latencyMs, done.outcome !== "completed"));
    }
    const result = await route.adapter.send({
      endpoint,
      body: { ...body, model: route.upstreamModel },
      stream: request.stream,
      signal: deps.stop ? AbortSignal.any([c.req.raw.signal, deps.stop]) : c.req.raw.signal,
      requestId: ex.requestId,
    });
    if (result.kind === "json") {
      finish(c, options, {
        status: result.status,
        outcome: "completed",
        usage: result.usage ?? estimateUsage(endpoint, body, 0),
        usageReported: result.usage !== null,
      });
      return c.json(result.body, result.status as 200);
    }
    ex.streaming = true;
    // The meter outlives this handler: it keeps numbers, not the request, its body or context.
    const promptEstimate = estimatePromptTokens(endpoint, body);
    const clientIp = c.get("clientIp") ?? "unknown";
    const log = deps.log;
    const status = result.status;
    const stream = meterStream(result.stream, {
      stripUsage: !request.includeUsage,
      idleMs: route.adapter.config.timeouts.idleMs,
      stop: deps.stop,
      now: deps.now,
      startedAt: ex.startedAt,
      onFault(outcome, cause) {
        log.warn("stream from backend failed", {
          request_id: ex.requestId,
          backend: ex.backend,
          outcome,
          error: cause instanceof Error ? cause.message : String(cause),
        });
      },
      onEnd(summary: StreamSummary) {
        finishExchange(ex, clientIp, options, {
          status,
          outcome: summary.outcome,
          usage: summary.usage ?? usageFrom(promptEstimate, summary.choiceEvents),
          usageReported: summary.usage !== null,
          ttftMs: summary.ttftMs,
        });
      },
    });
    return new Response(stream, {
      status: result.status,
      headers: { ...SSE_HEADERS, "x-request-id": ex.requestId },
    });
  };
}

/** Usage for an answer whose backend never reported it: estimated prompt, counted chunks. */
function estimateUsage(endpoint: Endpoint, body: Record<string, unknown>, chunks: number): Usage {
  return usageFrom(estimatePromptTokens(endpoint, body), chunks);
}

function usageFrom(prompt: number, chunks: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: chunks, total_tokens: prompt + chunks };
}
