import { assert, assertEquals } from "../../tests/assert.ts";
import { hashApiKey, timeOrderedId } from "./secrets.ts";

Deno.test("timeOrderedId() sorts by time, is unique within a millisecond, ends in 6 base64url characters", () => {
  const start = Date.parse("2026-11-24T10:00:00Z");
  const ids: string[] = [];
  // 5,000 ids in each of 4 milliseconds: far more than one base36 digit of the counter.
  for (let ms = 0; ms < 4; ms++) {
    for (let i = 0; i < 5000; i++) ids.push(timeOrderedId(start + ms));
  }
  assertEquals(new Set(ids).size, ids.length);
  assertEquals([...ids].sort(), ids, "in the order they were made");
  for (const id of ids) assert(/^[0-9a-z]{13}[A-Za-z0-9_-]{6}$/.test(id), id);
  const later = timeOrderedId(start + 1000);
  assert(later > ids[ids.length - 1]);
  assertEquals(later.slice(0, 9), Math.floor(start + 1000).toString(36).padStart(9, "0"));
  // The random part covers the whole alphabet (it is not stuck on a few characters).
  const seen = new Set(ids.flatMap((id) => [...id.slice(13)]));
  assert(seen.size === 64, `${seen.size} of 64 characters`);
});

Deno.test("hashApiKey() is the SHA-256 hex of the key's UTF-8 bytes, whatever characters it holds", async () => {
  const encoder = new TextEncoder();
  for (const plaintext of ["mg-abc_-09", "é\u00ff\u0080", "🙂x", "a\ud800b", "\u0000"]) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(plaintext));
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    assertEquals(hashApiKey(plaintext), hex, JSON.stringify(plaintext));
  }
});
