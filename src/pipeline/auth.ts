/** API key authentication for /v1: a bearer key, hashed, looked up in the key directory. */
import type { Context } from "hono";
import type { GatewayEnv } from "../context.ts";
import { GatewayError, storageUnavailable } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { hashApiKey } from "../store/secrets.ts";
import type { KeyRecord } from "../store/model.ts";
import type { KeyDirectory } from "./key_directory.ts";
import type { Step } from "./step.ts";

/** Options for {@linkcode apiKeyAuth}. */
export interface ApiKeyAuthOptions {
  directory: KeyDirectory;
  now: () => number;
  log: Logger;
  metrics: Metrics;
}

const KEY_SHAPE = /^mg-[A-Za-z0-9_-]{43}$/;

/**
 * Accepts `Authorization: Bearer <key>`, or `x-api-key` / `api-key` (as some SDKs send), with the
 * same decisions for each carrier. Missing, unknown, disabled and expired keys get the same 401,
 * so a caller learns nothing about which keys exist. The presented key is hashed and only the
 * hash is compared or looked up; a stored hash presented as a key hashes to something else.
 */
export function authStep(options: ApiKeyAuthOptions): Step {
  const decide = (c: Context<GatewayEnv>, reason: string | null, key: KeyRecord | null) => {
    const now = options.now();
    const refusal = reason ??
      (!key
        ? "unknown"
        : key.disabled
        ? "disabled"
        : key.expires_at && Date.parse(key.expires_at) <= now
        ? "expired"
        : null);
    if (refusal) {
      options.metrics.inc("modelgate_auth_failures_total", { reason: refusal });
      options.log.info("authentication failed", {
        reason: refusal,
        client_ip: c.get("clientIp"),
        key_id: key?.id,
      });
      throw new GatewayError(
        refusal === "missing"
          ? 'Missing API key: send it as "Authorization: Bearer <key>"'
          : "Invalid API key",
        { status: 401, type: "authentication_error", code: "invalid_api_key" },
      );
    }
    c.set("key", key!);
    c.get("exchange").keyId = key!.id;
  };
  return function authenticate(c) {
    const presented = credential(c.req.header("authorization")) ?? c.req.header("x-api-key") ??
      c.req.header("api-key") ?? null;
    const reason = !presented ? "missing" : !KEY_SHAPE.test(presented) ? "malformed" : null;
    if (reason) return decide(c, reason, null);
    const hash = hashApiKey(presented!);
    // A known key's record is usually cached: no wait then.
    const cached = options.directory.cached(hash);
    if (cached !== undefined) return decide(c, null, cached);
    return options.directory.lookup(hash).then(
      (key) => decide(c, null, key),
      (err) => {
        throw storageUnavailable("The API key", err);
      },
    );
  };
}

function credential(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}
