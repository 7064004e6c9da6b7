/** Opens and finishes the Exchange of each /v1 request, so every path settles exactly once. */
import type { Context } from "hono";
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

/** Starts the Exchange of a request: its id (the client's if sane, else a new one) and clock. */
export function openExchange(c: Context<GatewayEnv>, options: ExchangeOptions): Exchange {
  const given = c.req.header("x-request-id");
  const requestId = given !== undefined && REQUEST_ID.test(given) ? given : crypto.randomUUID();
  const ex: Exchange = {
    requestId,
    keyId: null,
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
  };
  c.set("exchange", ex);
  c.header("x-request-id", requestId);
  return ex;
}

const REQUEST_ID = /^[\w.-]{1,64}$/;

/**
 * Finishes the Exchange when its response is decided, so whatever earlier steps reserved or
 * acquired is settled or released exactly once: with the response, or with `thrown` (by a step;
 * a handler's error reaches Hono's onError and is left in `c.error`). A stream finishes later,
 * when its meter ends.
 */
export function closeExchange(
  c: Context<GatewayEnv>,
  options: ExchangeOptions,
  thrown: unknown,
): void {
  const ex = c.get("exchange");
  if (!ex || ex.streaming) return;
  const failure = thrown ?? c.error;
  const error = failure ? toGatewayError(failure) : null;
  const status = error?.status ?? c.res.status;
  finish(c, options, {
    status,
    outcome: error || status >= 400 ? outcomeOf(status) : "completed",
  });
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
    keyId: ex.keyId,
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
