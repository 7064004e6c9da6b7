/**
 * Refuses a request whose path holds a percent-escape that does not decode (`%E0%A4%A`, `%FF`,
 * a lone `%`) with 400, before routing. Hono decodes path parameters once and leniently, leaving
 * such escapes as they are; after this check every parameter a handler reads is exactly the text
 * the client encoded, and no handler decodes again.
 */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { invalidRequest } from "../errors.ts";

/** The middleware; costs one `indexOf` for a path without `%`. */
export function wellFormedPath(): MiddlewareHandler<GatewayEnv> {
  return async function checkPathEscapes(c, next) {
    const url = c.req.url;
    if (url.indexOf("%") !== -1) {
      try {
        decodeURIComponent(new URL(url).pathname);
      } catch {
        throw invalidRequest("Request path has a malformed percent-escape");
      }
    }
    await next();
  };
}
