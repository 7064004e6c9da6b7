/**
 * Admin UI sessions: log in with the admin key once; the browser then holds a signed, expiring,
 * HttpOnly, SameSite=Strict cookie (Secure under HTTPS) and never the key. State-changing requests
 * authenticated by the cookie must also carry the session's CSRF token in `x-csrf-token`, which a
 * page of another origin cannot read.
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import type { GatewayEnv } from "../src/context.ts";
import { GatewayError } from "../src/errors.ts";

/** Name of the session cookie. */
export const SESSION_COOKIE = "mg_session";
const SESSION_MS = 8 * 3600_000;

/** Signs and checks session tokens with a secret derived from the admin key's hash. */
export class Sessions {
  #secret: Buffer;
  #now: () => number;

  constructor(adminKeyHash: string, now: () => number) {
    // Derived, not stored: every instance with the same admin key accepts the same sessions, and
    // changing the admin key ends them all.
    this.#secret = createHmac("sha256", adminKeyHash).update("modelgate admin session").digest();
    this.#now = now;
  }

  /** A new session token: `<expiry>.<nonce>.<signature>`. */
  issue(): string {
    const expires = this.#now() + SESSION_MS;
    const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
    return `${expires}.${nonce}.${this.#sign(`${expires}.${nonce}`)}`;
  }

  /** Whether a token is authentic and unexpired. */
  valid(token: string | undefined): boolean {
    if (!token) return false;
    const [expires, nonce, signature] = token.split(".");
    if (!expires || !nonce || !signature || !/^\d+$/.test(expires)) return false;
    const expected = Buffer.from(this.#sign(`${expires}.${nonce}`));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return false;
    return Number(expires) > this.#now();
  }

  /** The CSRF token of a session (pages embed it; scripts send it back in `x-csrf-token`). */
  csrf(token: string): string {
    return this.#sign(`csrf:${token}`);
  }

  /** Cookie attributes for setting or clearing the session. */
  cookie(c: Context<GatewayEnv>, value: string, maxAgeSeconds: number): string {
    const secure = new URL(c.req.url).protocol === "https:" ? "; Secure" : "";
    return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
  }

  /** Seconds a new session lasts. */
  get maxAgeSeconds(): number {
    return SESSION_MS / 1000;
  }

  #sign(text: string): string {
    return createHmac("sha256", this.#secret).update(text).digest("base64url");
  }
}

/** Reads the session cookie of a request. */
export function sessionToken(c: Context<GatewayEnv>): string | undefined {
  const header = c.req.header("cookie") ?? "";
  for (const part of header.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === SESSION_COOKIE) return rest.join("=");
  }
  return undefined;
}

/**
 * The `alternative` of adminAuth: a valid session admits reads; writes also need the CSRF token.
 * Returns false (fall back to the bearer key) when there is no session cookie.
 */
export function sessionAuth(sessions: Sessions) {
  return function acceptSession(c: Context<GatewayEnv>): boolean {
    const token = sessionToken(c);
    if (!token || !sessions.valid(token)) return false;
    if (c.req.method === "GET" || c.req.method === "HEAD") return true;
    const presented = Buffer.from(c.req.header("x-csrf-token") ?? "");
    const expected = Buffer.from(sessions.csrf(token));
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw new GatewayError("Missing or wrong CSRF token", {
        status: 403,
        type: "permission_error",
        code: "csrf_failed",
      });
    }
    return true;
  };
}
