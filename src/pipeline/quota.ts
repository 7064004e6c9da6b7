/** Quota reservation before a request is sent, settlement and the ledger record after it ends. */
import type { Context } from "hono";
import type { ModelPolicy } from "../config.ts";
import type { Completion, GatewayEnv } from "../context.ts";
import { GatewayError, storageUnavailable } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Admission } from "../proxy/handlers.ts";
import type { Ledger } from "../store/ledger.ts";
import type {
  BudgetHeadroom,
  QuotaBroker,
  QuotaRefusal,
  Reservation,
  ReserveResult,
} from "../store/quota_broker.ts";
import { formatReset } from "./rate_limit.ts";
import type { KeyRecord, UsageRecord } from "../store/model.ts";

/** Options for {@linkcode createAdmission}. */
export interface AdmissionOptions {
  broker: QuotaBroker;
  ledger: Ledger;
  now: () => number;
  log: Logger;
  metrics: Metrics;
  prices: Record<string, ModelPolicy>;
}

const REFUSALS: Record<QuotaRefusal, string> = {
  quota: "This key has used its token quota",
  daily_tokens: "This key has used today's token budget; it resets at 00:00 UTC",
  daily_requests: "This key has used today's request budget; it resets at 00:00 UTC",
};

/**
 * The `beforeSend` step of the proxy: reserves what the request may use (its format's estimate:
 * prompt plus every answer's `max_tokens`, or the configured cap per answer) and registers the
 * finisher that settles the reservation from real usage and queues the ledger record. At least
 * one token is reserved, so a key at or over its quota is refused whatever it asks. Synchronous
 * while the key's lease has room (nearly always).
 *
 * A key without a per-minute limit gets the `x-ratelimit-*` headers of that kind from its budgets
 * instead: tokens from its quota or today's token budget (whichever has less left), requests
 * from today's request budget.
 */
export function createAdmission(options: AdmissionOptions) {
  const decide = (c: Context<GatewayEnv>, key: KeyRecord, result: ReserveResult) => {
    if (!result.ok) {
      options.metrics.inc("modelgate_quota_refusals_total", { reason: result.reason });
      refusedHeaders(c, key, result.reason, options.now());
      throw new GatewayError(REFUSALS[result.reason], {
        status: 429,
        type: "insufficient_quota",
        code: "insufficient_quota",
      });
    }
    const reservation = result.reservation;
    if (key.tpm === null || key.rpm === null) {
      const headroom = options.broker.headroom(reservation);
      if (key.tpm === null && headroom.tokens) budgetHeaders(c, "tokens", headroom.tokens);
      if (key.rpm === null && headroom.requests) budgetHeaders(c, "requests", headroom.requests);
    }
    c.get("exchange").finishers.push((done) => settle(options, key, reservation, done));
  };
  return function admit(c: Context<GatewayEnv>, admission: Admission): void | Promise<void> {
    const key = c.get("key");
    const estimate = Math.max(1, admission.request.reserveTokens);
    const result = options.broker.reserve(key, estimate);
    if (result instanceof Promise) {
      return result.then((done) => decide(c, key, done), (err) => {
        throw err instanceof GatewayError ? err : storageUnavailable("The key's quota", err);
      });
    }
    decide(c, key, result);
  };
}

/** The `x-ratelimit-*` trio of one kind from a budget. */
function budgetHeaders(
  c: Context<GatewayEnv>,
  kind: "tokens" | "requests",
  budget: BudgetHeadroom,
): void {
  c.header(`x-ratelimit-limit-${kind}`, String(budget.limit));
  c.header(`x-ratelimit-remaining-${kind}`, String(budget.remaining));
  if (budget.resetMs !== null) c.header(`x-ratelimit-reset-${kind}`, formatReset(budget.resetMs));
}

/** A refused request is told the budget that refused it is spent. */
function refusedHeaders(
  c: Context<GatewayEnv>,
  key: KeyRecord,
  reason: QuotaRefusal,
  now: number,
): void {
  const untilMidnight = 86_400_000 - (now % 86_400_000);
  if (reason === "daily_requests") {
    if (key.rpm !== null) return;
    budgetHeaders(c, "requests", {
      limit: key.daily_requests ?? 0,
      remaining: 0,
      resetMs: untilMidnight,
    });
    return;
  }
  if (key.tpm !== null) return;
  const daily = reason === "daily_tokens";
  budgetHeaders(c, "tokens", {
    limit: (daily ? key.daily_tokens : key.quota_tokens) ?? 0,
    remaining: 0,
    resetMs: daily ? untilMidnight : null,
  });
}

function settle(
  options: AdmissionOptions,
  key: KeyRecord,
  reservation: Reservation,
  done: Completion,
) {
  const price = options.prices[done.model]?.price ?? { input: 0, output: 0 };
  const record: UsageRecord = {
    request_id: done.requestId,
    time: new Date(options.now()).toISOString(),
    key_id: key.id,
    key_group: key.group,
    model: done.model,
    requested_model: done.requestedModel,
    backend: done.backend ?? "",
    endpoint: done.endpoint ?? "chat",
    stream: done.stream,
    status: done.status,
    outcome: done.outcome,
    prompt_tokens: done.usage.prompt_tokens,
    completion_tokens: done.usage.completion_tokens,
    total_tokens: done.usage.total_tokens,
    latency_ms: Math.round(done.latencyMs),
    ttft_ms: done.ttftMs === null ? null : Math.round(done.ttftMs),
    client_ip: done.clientIp,
    cost: (done.usage.prompt_tokens * price.input + done.usage.completion_tokens * price.output) /
      1_000_000,
    usage_reported: done.usageReported,
    attempts: done.attempts,
    queued_ms: Math.round(done.queuedMs),
  };
  options.broker.settle(reservation, record.total_tokens);
  options.ledger.record(record);
}
