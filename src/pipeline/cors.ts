/**
 * CORS for the client APIs (/v1, /api), so a web app on an allowed origin can call the gateway
 * from a browser. Only exact origins from `server.cors.allowed_origins` are ever named back; no
 * wildcard and no credentials (keys travel in headers, never in cookies), and /admin never gets
 * CORS. A preflight is answered before authentication, since browsers send it without the key.
 */
import type { Context } from "hono";
import type { GatewayEnv } from "../context.ts";
import { GatewayError } from "../errors.ts";

/** Request headers the SDKs send from a browser. */
const ALLOWED_HEADER =
  /^(authorization|content-type|accept|x-api-key|api-key|x-request-id|openai-[a-z0-9-]+|x-stainless-[a-z0-9-]+)$/;

/** Response headers a browser script may read. */
const EXPOSED = [
  "x-request-id",
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-tokens",
  "retry-after",
  "retry-after-ms",
].join(", ");

/**
 * Answers preflights of allowed origins (returns the answer) and marks their other responses
 * readable (returns null).
 */
export function corsStep(
  allowedOrigins: readonly string[],
): (c: Context<GatewayEnv>) => Response | null {
  const allowed = new Set(allowedOrigins);
  return function applyCors(c) {
    const origin = c.req.header("origin");
    const preflight = c.req.method === "OPTIONS" &&
      c.req.header("access-control-request-method") !== undefined;
    if (origin === undefined || !allowed.has(origin)) {
      if (preflight && origin !== undefined) {
        throw new GatewayError(`Origin "${origin.slice(0, 200)}" may not call this gateway`, {
          status: 403,
          type: "permission_error",
          code: "origin_not_allowed",
        });
      }
      return null;
    }
    c.header("access-control-allow-origin", origin);
    c.header("vary", "Origin");
    if (preflight) {
      const requested = (c.req.header("access-control-request-headers") ?? "")
        .split(",").map((name) => name.trim().toLowerCase())
        .filter((name) => ALLOWED_HEADER.test(name));
      c.header("access-control-allow-methods", "GET, POST, OPTIONS");
      if (requested.length > 0) c.header("access-control-allow-headers", requested.join(", "));
      c.header("access-control-max-age", "600");
      return c.body(null, 204);
    }
    c.header("access-control-expose-headers", EXPOSED);
    return null;
  };
}
