/** API key material: generation, hashing, ids. */
import { createHash } from "node:crypto";

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A new API key: `mg-` + 32 random bytes, base64url. */
export function generateApiKey(): string {
  return `mg-${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/**
 * SHA-256 hex of a key's UTF-8 bytes. Synchronous node:crypto: measured about 4x the per-request
 * throughput of crypto.subtle.digest, which matters on the auth path of every request; handing it
 * the string (it encodes UTF-8 itself) saves a TextEncoder copy per request.
 */
export function hashApiKey(plaintext: string): string {
  return createHash("sha256").update(plaintext, "utf8").digest("hex");
}

/** What listings show of a key: enough to recognise it, far too little to use it. */
export function displayPrefix(plaintext: string): string {
  return plaintext.slice(0, 10);
}

/** A short random id for records. */
export function newId(prefix: string): string {
  return `${prefix}_${base64url(crypto.getRandomValues(new Uint8Array(9)))}`;
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Random bytes drawn in bulk: one call into the runtime per 1,024 ids, not one per id. */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

/** Four random bytes as six base64url characters (what `base64url` makes of them). */
function randomSuffix(): string {
  if (poolAt + 4 > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  const a = pool[poolAt++], b = pool[poolAt++], c = pool[poolAt++], d = pool[poolAt++];
  return BASE64URL[a >> 2] + BASE64URL[((a & 3) << 4) | (b >> 4)] +
    BASE64URL[((b & 15) << 2) | (c >> 6)] + BASE64URL[c & 63] + BASE64URL[d >> 2] +
    BASE64URL[(d & 3) << 4];
}

let lastMs = 0;
let lastTime = "";
let counter = 0;

/** The time part of {@linkcode timeOrderedId}: sorts before every id made at `ms` or later. */
export function timeOrderedPrefix(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(36).padStart(9, "0");
}

/** A time-ordered id: sorts by creation time, unique within and across processes. */
export function timeOrderedId(nowMs: number): string {
  if (nowMs === lastMs && lastTime !== "") counter++;
  else {
    lastMs = nowMs;
    lastTime = timeOrderedPrefix(nowMs);
    counter = 0;
  }
  const seq = counter < 36 ? `000${counter.toString(36)}` : counter.toString(36).padStart(4, "0");
  return `${lastTime}${seq}${randomSuffix()}`;
}
