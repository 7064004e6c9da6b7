/** Quota reservation before a request is sent, settlement and the ledger record after it ends. */
import type { Context } from "hono";
import type { ModelPolicy } from "../config.ts";
import type { Completion, GatewayEnv } from "../context.ts";
import { GatewayError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Admission } from "../proxy/handlers.ts";
import type { Ledger } from "../store/ledger.ts";
import type { QuotaBroker, QuotaRefusal, Reservation } from "../store/quota_broker.ts";
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
 * one token is reserved, so a key at or over its quota is refused whatever it asks.
 */
export function createAdmission(options: AdmissionOptions) {
  return async function admit(c: Context<GatewayEnv>, admission: Admission): Promise<void> {
    const key = c.get("key");
    const estimate = Math.max(1, admission.request.reserveTokens);
    const result = await options.broker.reserve(key, estimate);
    if (!result.ok) {
      options.metrics.inc("modelgate_quota_refusals_total", { reason: result.reason });
      throw new GatewayError(REFUSALS[result.reason], {
        status: 429,
        type: "insufficient_quota",
        code: "insufficient_quota",
      });
    }
    const reservation = result.reservation;
    c.get("exchange").finishers.push((done) => settle(options, key, reservation, done));
  };
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
