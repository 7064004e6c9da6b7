/** Reads and parses a JSON request body under a byte limit, before any handler runs. */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { readJsonObject } from "../http/body.ts";

/**
 * The limit holds for every body, including chunked ones without Content-Length: the body is
 * counted as it arrives and the request is refused with 413 the moment it passes the limit.
 */
export function jsonBody(maxBytes: number): MiddlewareHandler<GatewayEnv> {
  return async function readJsonBody(c, next) {
    c.set("body", await readJsonObject(c.req.raw, { maxBytes }));
    await next();
  };
}
