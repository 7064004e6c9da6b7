/** Admin authentication: the admin key as a bearer token, compared in constant time. */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../src/context.ts";
import { GatewayError } from "../src/errors.ts";
import type { Logger } from "../src/log.ts";
import type { Metrics } from "../src/metrics.ts";

/** Options for {@linkcode adminAuth}. */
export interface AdminAuthOptions {
  /** SHA-256 (hex) of the admin key. */
  adminKeyHash: string;
  now: () => number;
  log: Logger;
  metrics: Metrics;
  /** Failed attempts from one address within `windowMs` before it must wait. */
  maxFailures?: number;
  windowMs?: number;
  /** Shared with the UI login form, so both count failures together. */
  gate?: FailureGate;
  /** Accepts a request by other means first (the admin UI's session cookie). */
  alternative?: (c: Parameters<MiddlewareHandler<GatewayEnv>>[0]) => Promise<boolean> | boolean;
}

/** SHA-256 hex of a secret. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Constant-time check of a presented admin key against the stored hash. */
export function adminKeyMatches(presented: string, expectedHash: string): boolean {
  const presentedHash = Buffer.from(sha256Hex(presented), "hex");
  const expected = Buffer.from(expectedHash, "hex");
  return presentedHash.length === expected.length && timingSafeEqual(presentedHash, expected);
}

/**
 * Counts admin login attempts per address; an address over the limit waits out its window. An
 * attempt takes its slot before it is evaluated and gives it back only when it succeeds, so
 * attempts in flight at once (e.g. holding back their bodies) can never exceed the limit.
 */
export class FailureGate {
  #failures = new Map<string, { count: number; since: number }>();
  constructor(
    readonly now: () => number,
    readonly maxFailures = 5,
    readonly windowMs = 60_000,
  ) {}

  /** Takes a slot for one attempt: 0, or the seconds the address must wait (no slot taken). */
  reserve(ip: string): number {
    const now = this.now();
    const entry = this.#failures.get(ip);
    if (entry && now - entry.since > this.windowMs) this.#failures.delete(ip);
    const current = this.#failures.get(ip) ?? { count: 0, since: now };
    if (current.count >= this.maxFailures) {
      return Math.max(1, Math.ceil((current.since + this.windowMs - now) / 1000));
    }
    current.count++;
    this.#failures.set(ip, current);
    if (this.#failures.size > 10_000) this.#failures.delete(this.#failures.keys().next().value!);
    return 0;
  }

  /** Gives back the slot of an attempt that succeeded. */
  refund(ip: string): void {
    const entry = this.#failures.get(ip);
    if (entry && entry.count > 0) entry.count--;
  }
}

/** The 429 for an address that failed too often. */
export function tooManyFailures(wait: number): GatewayError {
  return new GatewayError("Too many failed admin logins: wait before trying again", {
    status: 429,
    type: "rate_limit_error",
    code: "rate_limit_exceeded",
    headers: { "retry-after": String(wait) },
  });
}

/**
 * Refuses requests without the admin key with 401. An address that keeps failing is refused with
 * 429 and `Retry-After` until its window passes, so the key cannot be guessed at speed.
 */
export function adminAuth(options: AdminAuthOptions): MiddlewareHandler<GatewayEnv> {
  const gate = options.gate ?? new FailureGate(options.now, options.maxFailures, options.windowMs);
  return async function requireAdmin(c, next) {
    if (options.alternative && await options.alternative(c)) return await next();
    const ip = c.get("clientIp") ?? "unknown";
    const wait = gate.reserve(ip);
    if (wait > 0) throw tooManyFailures(wait);
    const header = c.req.header("authorization") ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    if (!token || !adminKeyMatches(token, options.adminKeyHash)) {
      options.metrics.inc("modelgate_admin_auth_failures_total");
      options.log.warn("admin authentication failed", { client_ip: ip });
      throw new GatewayError("Invalid admin key", {
        status: 401,
        type: "authentication_error",
        code: "invalid_api_key",
      });
    }
    gate.refund(ip);
    await next();
  };
}
