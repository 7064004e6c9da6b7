/** Reads and parses a JSON request body under a byte limit, before any handler runs. */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { invalidRequest, requestTooLarge } from "../errors.ts";

/**
 * The limit holds for every body, including chunked ones without Content-Length: the body is
 * counted as it arrives and the request is refused with 413 the moment it passes the limit.
 */
export function jsonBody(maxBytes: number): MiddlewareHandler<GatewayEnv> {
  return async function readJsonBody(c, next) {
    const declared = c.req.header("content-length");
    if (declared !== undefined && Number(declared) > maxBytes) throw requestTooLarge(maxBytes);
    const bytes = await readLimited(c.req.raw.body, maxBytes);
    if (bytes.byteLength === 0) {
      throw invalidRequest("Request body is empty: expected a JSON object");
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      throw invalidRequest("Request body is not valid JSON");
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw invalidRequest("Request body must be a JSON object");
    }
    c.set("body", parsed as Record<string, unknown>);
    await next();
  };
}

async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        reader.cancel().catch(() => {});
        throw requestTooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return all;
}
