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
import { estimatePromptTokens } from "../usage/estimate.ts";
import { modelAllowed, modelNotAllowed } from "./access.ts";

/** Options for {@linkcode createAdmission}. */
export interface AdmissionOptions {
  broker: QuotaBroker;
  ledger: Ledger;
  now: () => number;
  log: Logger;
  metrics: Metrics;
  /** Tokens reserved for the answer when a request sets no `max_tokens`. */
  defaultMaxTokens: number;
  prices: Record<string, ModelPolicy>;
}

const REFUSALS: Record<QuotaRefusal, string> = {
  quota: "This key has used its token quota",
  daily_tokens: "This key has used today's token budget; it resets at 00:00 UTC",
  daily_requests: "This key has used today's request budget; it resets at 00:00 UTC",
};

/**
 * The `beforeSend` step of the proxy: checks the model against the key, reserves the estimate
 * (prompt estimate plus `max_tokens`, or the configured cap), and registers the finisher that
 * settles the reservation from real usage and writes the ledger record in one atomic operation.
 */
export function createAdmission(options: AdmissionOptions) {
  return async function admit(c: Context<GatewayEnv>, admission: Admission): Promise<void> {
    const key = c.get("key");
    const { request, model, endpoint, body } = admission;
    if (!modelAllowed(key, request.model) && !modelAllowed(key, model)) {
      throw modelNotAllowed(request.model);
    }
    const answer = endpoint === "embeddings" ? 0 : request.maxTokens ?? options.defaultMaxTokens;
    const estimate = estimatePromptTokens(endpoint, body) + answer;
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
  };
  options.broker.settle(reservation, record.total_tokens);
  options.ledger.record(record);
}
