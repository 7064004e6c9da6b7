/** Opens and finishes the Exchange of each /v1 request, so every path settles exactly once. */
import type { Context, MiddlewareHandler } from "hono";
import type { Usage } from "../../adapters/types.ts";
import type { Completion, Exchange, GatewayEnv, Outcome } from "../context.ts";
import { toGatewayError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { PendingWork } from "../pending.ts";

/** Token counts of a request that produced none. */
export const NO_USAGE: Usage = Object.freeze({
  prompt_tokens: 0,
  completion_tokens: 0,
  total_tokens: 0,
});

/** Options for {@linkcode exchange}. */
export interface ExchangeOptions {
  now: () => number;
  log: Logger;
  /** Tracks asynchronous finishers so shutdown can wait for them. */
  pending?: PendingWork;
}

/**
 * Starts the Exchange and guarantees it finishes exactly once: with the response, with the error
 * that replaced it, or (for streams) when the meter ends. So whatever an earlier middleware
 * reserved or acquired is always settled or released.
 */
export function exchange(options: ExchangeOptions): MiddlewareHandler<GatewayEnv> {
  return async function openExchange(c, next) {
    const requestId = c.req.header("x-request-id")?.match(/^[\w.-]{1,64}$/)?.[0] ??
      crypto.randomUUID();
    c.set("exchange", {
      requestId,
      startedAt: options.now(),
      endpoint: null,
      model: null,
      servedModel: null,
      backend: null,
      attempts: 0,
      queuedMs: 0,
      stream: false,
      streaming: false,
      finishers: [],
      finished: false,
    });
    c.header("x-request-id", requestId);
    try {
      await next();
    } finally {
      // A stream finishes when its meter ends; everything else finishes with its response.
      // Hono hands thrown errors to onError inside next(), leaving them in `c.error`.
      const ex = c.get("exchange");
      if (!ex.streaming) {
        const error = c.error ? toGatewayError(c.error) : null;
        const status = error?.status ?? c.res.status;
        finish(c, options, {
          status,
          outcome: error || status >= 400 ? outcomeOf(status) : "completed",
        });
      }
    }
  };
}

function outcomeOf(status: number): Outcome {
  if (status === 504) return "timeout";
  if (status === 502) return "upstream_error";
  if (status === 499) return "client_cancelled";
  return "error";
}

/** What the caller of {@linkcode finish} knows about the end of a request. */
export interface FinishInput {
  status: number;
  outcome: Outcome;
  usage?: Usage;
  usageReported?: boolean;
  ttftMs?: number | null;
}

/** Runs the finishers once; later calls do nothing. Finisher failures are logged, not thrown. */
export function finish(c: Context<GatewayEnv>, options: ExchangeOptions, input: FinishInput): void {
  const ex = c.get("exchange");
  if (ex) finishExchange(ex, c.get("clientIp") ?? "unknown", options, input);
}

/**
 * The same for code that outlives the request's context (a stream's meter), so an open stream
 * keeps only its exchange alive, not the whole request.
 */
export function finishExchange(
  ex: Exchange,
  clientIp: string,
  options: ExchangeOptions,
  input: FinishInput,
): void {
  if (ex.finished) return;
  ex.finished = true;
  if (ex.finishers.length === 0) return;
  const completion: Completion = {
    requestId: ex.requestId,
    endpoint: ex.endpoint,
    model: ex.servedModel ?? ex.model ?? "",
    requestedModel: ex.model ?? "",
    attempts: ex.attempts,
    queuedMs: ex.queuedMs,
    backend: ex.backend,
    stream: ex.stream,
    status: input.status,
    outcome: input.outcome,
    usage: input.usage ?? NO_USAGE,
    usageReported: input.usageReported ?? false,
    latencyMs: Math.max(0, options.now() - ex.startedAt),
    ttftMs: input.ttftMs ?? null,
    clientIp,
  };
  for (const finisher of ex.finishers) {
    try {
      const result = finisher(completion);
      if (result instanceof Promise) {
        options.pending?.track(result);
        result.catch((err) => options.log.error("finisher failed", { error: String(err) }));
      }
    } catch (err) {
      options.log.error("finisher failed", { error: String(err) });
    }
  }
}
