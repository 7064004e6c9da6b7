/** Finds the client's address: the socket peer, or the forwarded address from a trusted proxy. */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { createIpMatcher, formatIp, type IpBytes, parseIp } from "../net/ip.ts";

/**
 * `X-Forwarded-For` is believed only when the socket peer is a trusted proxy; then the right-most
 * address that is not itself a trusted proxy is the client (entries left of it are client-supplied).
 */
export function clientIp(trustedProxies: readonly string[]): MiddlewareHandler<GatewayEnv> {
  const isTrusted = createIpMatcher(trustedProxies);
  const anyTrusted = trustedProxies.length > 0;
  return async function resolveClientIp(c, next) {
    const peer = parseIp(c.env?.remoteAddr?.hostname ?? "");
    let client: IpBytes | null = peer;
    if (anyTrusted && isTrusted(peer)) {
      const forwarded = c.req.header("x-forwarded-for");
      if (forwarded) {
        const hops = forwarded.split(",");
        for (let i = hops.length - 1; i >= 0; i--) {
          const hop = parseIp(hops[i]);
          if (!hop) break;
          client = hop;
          if (!isTrusted(hop)) break;
        }
      }
    }
    c.set("clientIpBytes", client);
    c.set("clientIp", client ? formatIp(client) : "unknown");
    await next();
  };
}
