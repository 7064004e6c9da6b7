/**
 * The handler of every proxied endpoint, whatever its wire format: the format's codec parses the
 * request, the key's access and quota are checked, the request is routed and sent, and a stream
 * is metered on its way to the client. Thin on purpose: each step lives in its own module.
 */
import type { Context, Handler } from "hono";
import { rawBytesOf } from "../../adapters/http.ts";
import type { Usage } from "../../adapters/types.ts";
import type { GatewayEnv } from "../context.ts";
import type { Codec, ParsedRequest } from "../formats/types.ts";
import type { Logger } from "../log.ts";
import type { PendingWork } from "../pending.ts";
import type { Router } from "../routing/types.ts";
import { modelNotFound } from "../errors.ts";
import { meterStream, type StreamSummary } from "../usage/meter.ts";
import { type ExchangeOptions, finish, finishExchange } from "./exchange.ts";
import type { InFlight } from "./in_flight.ts";
import { groupOf } from "./models.ts";

/** What the proxy handlers need. */
export interface ProxyDeps {
  router: Router;
  now: () => number;
  log: Logger;
  pending?: PendingWork;
  /** Aborted when shutdown stops waiting: ends open streams. */
  stop?: AbortSignal;
  /** Signals of the requests in flight, all aborted when shutdown stops waiting. */
  inFlight: InFlight;
  /** Answer tokens reserved per answer when a request sets no limit. */
  defaultMaxTokens: number;
  /** Longest event of a streamed answer, in bytes. */
  maxEventBytes?: number;
  /**
   * Checks the key may use the model, before anything reveals whether the model exists: gets the
   * name sent and the canonical name it stands for. Throws to refuse.
   */
  checkAccess: (c: Context<GatewayEnv>, requested: string, canonical: string) => void;
  /**
   * Runs once the model is known to be served, before routing: quota reservation (once per client
   * request, whatever the attempts). It throws to refuse; what it acquires it releases through an
   * exchange finisher.
   */
  beforeSend: (c: Context<GatewayEnv>, admission: Admission) => Promise<void> | void;
}

/** What the pipeline knows about a request about to be sent. */
export interface Admission {
  codec: Codec;
  request: ParsedRequest;
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
    const plan = deps.router.plan(request.model, groupOf(c));
    deps.checkAccess(c, request.model, plan.model);
    if (plan.tiers.length === 0) throw modelNotFound(request.model);
    await deps.beforeSend(c, { codec, request });
    // From here on the request counts as sent: it gets a ledger record whatever happens.
    const flight = deps.inFlight.open(c.req.raw.signal);
    ex.finishers.push(flight.release);
    const routed = await deps.router.route(plan, {
      model: request.model,
      signal: flight.signal,
      progress: ex,
    }, (target, signal) => {
      ex.backend = target.adapter.config.name;
      ex.servedModel = target.model;
      return codec.send(target.adapter, request, {
        upstreamModel: target.upstreamModel,
        signal,
        requestId: ex.requestId,
        now: deps.now,
        startedAt: ex.startedAt,
      });
    });
    ex.finishers.push((done) =>
      routed.release({
        failed: done.outcome !== "completed",
        latencyMs: done.latencyMs - ex.queuedMs,
      })
    );
    const answer = routed.value;
    const idleMs = routed.target.adapter.config.timeouts.idleMs;
    if (answer.kind === "json") {
      finish(c, options, {
        status: answer.status,
        outcome: "completed",
        usage: answer.usage ?? estimated(request.promptTokens, codec.answerTokens(answer.body)),
        usageReported: answer.usage !== null,
      });
      // An answer passed on unchanged goes out as the bytes it came in: no second serialisation.
      const raw = rawBytesOf(answer.body);
      if (raw) {
        c.header("content-type", "application/json");
        return c.body(raw as Uint8Array<ArrayBuffer>, answer.status as 200);
      }
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
      idleMs,
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
