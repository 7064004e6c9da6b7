/**
 * Admin UI sessions: log in with the admin key once; the browser then holds a signed, expiring,
 * HttpOnly, SameSite=Strict cookie (Secure under HTTPS) and never the key. State-changing requests
 * authenticated by the cookie must also carry the session's CSRF token in `x-csrf-token`, which a
 * page of another origin cannot read. Logging out revokes the session on every instance.
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import type { GatewayEnv } from "../src/context.ts";
import { GatewayError } from "../src/errors.ts";

/** Name of the session cookie. */
export const SESSION_COOKIE = "mg_session";
const SESSION_MS = 8 * 3600_000;
/** How long a "not revoked" answer from KV is trusted (revocations reach other instances within). */
const NOT_REVOKED_TTL_MS = 1000;
const NOT_REVOKED_CACHE_SIZE = 1000;

/** KV key marking a session revoked until its expiry. */
export function revokedSessionKey(nonce: string): Deno.KvKey {
  return ["admin_sessions_revoked", nonce];
}

/** What {@linkcode Sessions} needs. */
export interface SessionsOptions {
  /** SHA-256 (hex) of the admin key. */
  adminKeyHash: string;
  now: () => number;
  /** Where revocations live, shared by every instance that shares keys. */
  kv: Deno.Kv;
}

/**
 * Signs and checks session tokens with a secret derived from the admin key's hash. Logging out
 * revokes a session in KV until it would have expired, so its cookie stops working everywhere.
 */
export class Sessions {
  #secret: Buffer;
  #now: () => number;
  #kv: Deno.Kv;
  /** Nonces KV said were not revoked, with when it said so (bounded, oldest dropped first). */
  #notRevoked = new Map<string, number>();

  constructor(options: SessionsOptions) {
    // Derived, not stored: every instance with the same admin key accepts the same sessions, and
    // changing the admin key ends them all.
    this.#secret = createHmac("sha256", options.adminKeyHash).update("modelgate admin session")
      .digest();
    this.#now = options.now;
    this.#kv = options.kv;
  }

  /** A new session token: `<expiry>.<nonce>.<signature>`. */
  issue(): string {
    const expires = this.#now() + SESSION_MS;
    const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
    return `${expires}.${nonce}.${this.#sign(`${expires}.${nonce}`)}`;
  }

  /** Whether a token is authentic, unexpired and not revoked. */
  async valid(token: string | undefined): Promise<boolean> {
    const session = this.#authentic(token);
    return session !== null && !(await this.#revoked(session.nonce));
  }

  /** Revokes a session until its expiry; a token that is not an authentic live one is ignored. */
  async revoke(token: string | undefined): Promise<void> {
    const session = this.#authentic(token);
    if (!session) return;
    this.#notRevoked.delete(session.nonce);
    await this.#kv.set(revokedSessionKey(session.nonce), true, {
      expireIn: Math.max(1, session.expires - this.#now()),
    }).catch((err) => {
      throw sessionStoreUnavailable(err);
    });
  }

  /** The signed parts of a live token, or null (checked before any KV read). */
  #authentic(token: string | undefined): { expires: number; nonce: string } | null {
    if (!token) return null;
    const [expires, nonce, signature] = token.split(".");
    if (!expires || !nonce || !signature || !/^\d{1,15}$/.test(expires)) return null;
    const expected = Buffer.from(this.#sign(`${expires}.${nonce}`));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    return Number(expires) > this.#now() ? { expires: Number(expires), nonce } : null;
  }

  async #revoked(nonce: string): Promise<boolean> {
    const now = this.#now();
    const checked = this.#notRevoked.get(nonce);
    if (checked !== undefined && now - checked < NOT_REVOKED_TTL_MS) return false;
    let revoked: boolean;
    try {
      revoked = (await this.#kv.get(revokedSessionKey(nonce))).value !== null;
    } catch (err) {
      throw sessionStoreUnavailable(err);
    }
    this.#notRevoked.delete(nonce);
    if (!revoked) {
      this.#notRevoked.set(nonce, now);
      if (this.#notRevoked.size > NOT_REVOKED_CACHE_SIZE) {
        this.#notRevoked.delete(this.#notRevoked.keys().next().value!);
      }
    }
    return revoked;
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

/** 503 when KV cannot say whether a session was revoked, or record that it was. */
function sessionStoreUnavailable(cause: unknown): GatewayError {
  return new GatewayError("Admin sessions cannot be checked right now; retry", {
    status: 503,
    type: "api_error",
    code: "session_store_unavailable",
    headers: { "retry-after": "1" },
    cause,
  });
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
  return async function acceptSession(c: Context<GatewayEnv>): Promise<boolean> {
    const token = sessionToken(c);
    if (!token || !(await sessions.valid(token))) return false;
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
