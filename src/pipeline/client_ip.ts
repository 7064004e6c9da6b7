/** Finds the client's address: the socket peer, or the forwarded address from a trusted proxy. */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { createIpMatcher, formatIp, type IpBytes, parseIp } from "../net/ip.ts";
import type { Step } from "./step.ts";

/**
 * `X-Forwarded-For` is believed only when the socket peer is a trusted proxy; then the right-most
 * address that is not itself a trusted proxy is the client (entries left of it are client-supplied).
 */
export function clientIpStep(trustedProxies: readonly string[]): Step {
  const isTrusted = createIpMatcher(trustedProxies);
  const anyTrusted = trustedProxies.length > 0;
  return function resolveClientIp(c) {
    const hostname = c.env?.remoteAddr?.hostname ?? "";
    // Peers repeat (keep-alive, a proxy in front): their parsed form is reused.
    let peer = peers.get(hostname);
    if (peer === undefined) {
      peer = parseIp(hostname);
      if (peers.size >= MAX_CACHED_PEERS) peers.clear();
      peers.set(hostname, peer);
    }
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
    c.set("clientIp", client === peer ? formattedPeer(hostname, peer) : formatIp(client!));
  };
}

const MAX_CACHED_PEERS = 10_000;
const peers = new Map<string, IpBytes | null>();
const formatted = new Map<string, string>();

function formattedPeer(hostname: string, peer: IpBytes | null): string {
  if (!peer) return "unknown";
  let text = formatted.get(hostname);
  if (text === undefined) {
    text = formatIp(peer);
    if (formatted.size >= MAX_CACHED_PEERS) formatted.clear();
    formatted.set(hostname, text);
  }
  return text;
}

/** The same as a middleware, for routes outside the client pipeline (admin, metrics). */
export function clientIp(trustedProxies: readonly string[]): MiddlewareHandler<GatewayEnv> {
  const step = clientIpStep(trustedProxies);
  return async function resolveClientIpMiddleware(c, next) {
    step(c);
    await next();
  };
}
