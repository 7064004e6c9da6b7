/** `GET /v1/me`: the calling key's limits, remaining quota and today's usage. */
import type { Handler } from "hono";
import type { GatewayEnv } from "../context.ts";
import type { KeyStore } from "../store/key_store.ts";
import { type QuotaBroker, utcDay } from "../store/quota_broker.ts";

/** Describes the calling key; never its hash or secret. */
export function describeMe(
  keys: KeyStore,
  broker: QuotaBroker,
  now: () => number,
): Handler<GatewayEnv> {
  return async function me(c) {
    const key = c.get("key");
    // Usage is written every 100 ms; write this instance's share now so the answer is current.
    await broker.flush();
    const usage = await keys.usage(key.id, utcDay(now()));
    const remaining = (
      limit: number | null,
      used: number,
    ) => (limit === null ? null : Math.max(0, limit - used));
    return c.json({
      object: "api_key",
      id: key.id,
      name: key.name,
      group: key.group,
      prefix: key.prefix,
      expires_at: key.expires_at,
      limits: {
        quota_tokens: key.quota_tokens,
        daily_tokens: key.daily_tokens,
        daily_requests: key.daily_requests,
        rpm: key.rpm,
        burst: key.burst,
        tpm: key.tpm,
        max_concurrency: key.max_concurrency,
      },
      allowed_models: key.allowed_models,
      allowed_ips: key.allowed_ips,
      default_model: key.default_model,
      usage: {
        used_tokens: usage.used_tokens,
        reserved_tokens: usage.reserved_tokens,
        today: { tokens: usage.daily_tokens, requests: usage.daily_requests },
      },
      remaining: {
        quota_tokens: remaining(key.quota_tokens, usage.used_tokens),
        daily_tokens: remaining(key.daily_tokens, usage.daily_tokens),
        daily_requests: remaining(key.daily_requests, usage.daily_requests),
      },
    });
  };
}
