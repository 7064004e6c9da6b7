/** Handlers for /v1/*: validate, route, call the adapter, meter the answer. Thin on purpose. */
import type { Context, Handler } from "hono";
import type { Endpoint, Usage } from "../../adapters/types.ts";
import type { GatewayEnv } from "../context.ts";
import type { Logger } from "../log.ts";
import type { Router } from "../routing/types.ts";
import { estimatePromptTokens } from "../usage/estimate.ts";
import { meterStream, type StreamSummary } from "../usage/meter.ts";
import { type ExchangeOptions, finish, finishExchange } from "./exchange.ts";
import { type ProxyRequest, validateBody } from "./validate.ts";
import type { PendingWork } from "../pending.ts";

/** What the proxy handlers need. */
export interface ProxyDeps {
  router: Router;
  now: () => number;
  log: Logger;
  pending?: PendingWork;
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
  /** The model the requested name stands for in the key's group (aliases resolved). */
  model: string;
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
    const group = c.get("key").group || "default";
    const model = deps.router.canonical(request.model, group);
    await deps.beforeSend?.(c, { endpoint, request, body, model });
    // From here on the request counts as sent: it gets a ledger record whatever happens.
    const routed = await deps.router.route({
      model: request.model,
      group,
      signal: deps.stop ? AbortSignal.any([c.req.raw.signal, deps.stop]) : c.req.raw.signal,
    }, (target, signal) => {
      ex.backend = target.adapter.config.name;
      return target.adapter.send({
        endpoint,
        body: { ...body, model: target.upstreamModel },
        stream: request.stream,
        signal,
        requestId: ex.requestId,
      });
    });
    ex.model = routed.target.model;
    ex.finishers.push((done) =>
      routed.release({
        failed: done.outcome !== "completed",
        latencyMs: done.latencyMs - routed.queuedMs,
      })
    );
    const route = routed.target;
    const result = routed.value;
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
