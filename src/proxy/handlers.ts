/**
 * The handler of every proxied endpoint, whatever its wire format: the format's codec parses the
 * request, the key's access and quota are checked, the request is routed and sent, and a stream
 * is metered on its way to the client. Thin on purpose: each step lives in its own module.
 */
import type { Context, Handler } from "hono";
import type { Usage } from "../../adapters/types.ts";
import type { GatewayEnv } from "../context.ts";
import type { Codec, ParsedRequest } from "../formats/types.ts";
import type { Logger } from "../log.ts";
import type { PendingWork } from "../pending.ts";
import type { BackendStats } from "../routing/backend_stats.ts";
import type { ModelRegistry, Route } from "../routing/registry.ts";
import { meterStream, type StreamSummary } from "../usage/meter.ts";
import { type ExchangeOptions, finish, finishExchange } from "./exchange.ts";

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
  /** Answer tokens reserved per answer when a request sets no limit. */
  defaultMaxTokens: number;
  /** Longest event of a streamed answer, in bytes. */
  maxEventBytes?: number;
  /**
   * Checks the key may use the model, before anything reveals whether the model exists: gets the
   * name sent and the canonical name it stands for. Throws to refuse.
   */
  checkAccess?: (c: Context<GatewayEnv>, requested: string, canonical: string) => void;
  /**
   * Runs after routing, before the backend is called: quota reservation. It throws to refuse;
   * what it acquires it releases through an exchange finisher.
   */
  beforeSend?: (c: Context<GatewayEnv>, admission: Admission) => Promise<void> | void;
}

/** What the pipeline knows about a request about to be sent. */
export interface Admission {
  codec: Codec;
  request: ParsedRequest;
  route: Route;
}

/** The handler of one proxied endpoint. */
export function proxyEndpoint<P extends ParsedRequest>(
  codec: Codec<P>,
  deps: ProxyDeps,
): Handler<GatewayEnv> {
  const options: ExchangeOptions = { now: deps.now, log: deps.log, pending: deps.pending };
  return async function proxy(c) {
    const ex = c.get("exchange");
    const request = codec.parse(c.get("body"), {
      fallbackModel: c.get("key").default_model,
      defaultMaxTokens: deps.defaultMaxTokens,
    });
    ex.endpoint = codec.name;
    ex.model = request.model;
    ex.stream = request.stream;
    deps.checkAccess?.(c, request.model, deps.registry.canonical(request.model));
    const route = deps.registry.resolve(request.model);
    ex.servedModel = route.model;
    await deps.beforeSend?.(c, { codec, request, route });
    // From here on the request counts as sent: it gets a ledger record whatever happens.
    const backend = route.adapter.config.name;
    ex.backend = backend;
    ex.attempts = 1;
    if (deps.stats) {
      const stats = deps.stats;
      stats.start(backend);
      ex.finishers.push((done) => stats.end(backend, done.latencyMs, done.outcome !== "completed"));
    }
    const answer = await codec.send(route.adapter, request, {
      upstreamModel: route.upstreamModel,
      signal: deps.stop ? AbortSignal.any([c.req.raw.signal, deps.stop]) : c.req.raw.signal,
      requestId: ex.requestId,
      now: deps.now,
      startedAt: ex.startedAt,
    });
    if (answer.kind === "json") {
      finish(c, options, {
        status: answer.status,
        outcome: "completed",
        usage: answer.usage ?? estimated(request.promptTokens, codec.answerTokens(answer.body)),
        usageReported: answer.usage !== null,
      });
      return c.json(answer.body, answer.status as 200);
    }
    ex.streaming = true;
    // The meter outlives this handler: it keeps numbers, not the request, its body or context.
    const clientIp = c.get("clientIp") ?? "unknown";
    const log = deps.log;
    const status = answer.status;
    const promptTokens = request.promptTokens;
    const stream = meterStream(answer.stream, {
      framing: codec.framing,
      inspect: codec.inspector(request),
      errorEvent: codec.errorEvent,
      idleMs: route.adapter.config.timeouts.idleMs,
      maxEventBytes: deps.maxEventBytes,
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
          usage: summary.usage ?? estimated(promptTokens, summary.outputEvents),
          usageReported: summary.usage !== null,
          ttftMs: summary.ttftMs,
        });
      },
    });
    // Set on the context, so the x-ratelimit-* and x-request-id headers set earlier go too.
    c.header("content-type", codec.streamType);
    c.header("cache-control", "no-cache");
    c.header("x-accel-buffering", "no");
    return c.body(stream, status as 200);
  };
}

/** Usage for an answer whose backend never reported it: estimated prompt, counted answer. */
function estimated(prompt: number, completion: number): Usage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
}
