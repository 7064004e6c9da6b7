/**
 * The one bounded reader of request bodies: every route that reads a body reads it here, with a
 * byte limit suited to the route and a bound on how long the client may stay silent. Nothing is
 * buffered past the limit: a declared Content-Length over it is refused before reading, and a body
 * without one (chunked) is refused the moment the bytes read pass it.
 */
import { isUtf8 } from "node:buffer";
import { GatewayError, invalidRequest, requestTooLarge } from "../errors.ts";
import { NATIVE_READ_MAX, readDeclared, readStream, ReadStreamError } from "./read_stream.ts";

/** Longest silence between two parts of a request body, in ms, before it is refused with 408. */
export const BODY_IDLE_MS = 30_000;

/** Limits of one body read. */
export interface BodyLimits {
  /** Largest body accepted, in bytes; past it the request gets 413. */
  maxBytes: number;
  /** Longest silence between two parts of the body, in ms (default {@linkcode BODY_IDLE_MS}). */
  idleMs?: number;
}

/** 408 for a client that stopped sending its body. */
function bodyTimeout(idleMs: number): GatewayError {
  return new GatewayError(`Request body stalled: nothing received for ${idleMs} ms`, {
    status: 408,
    type: "invalid_request_error",
    code: "request_timeout",
  });
}

/** Reads a request body into memory, refusing it with 413 past `maxBytes` and 408 when it stalls. */
export async function readBody(request: Request, limits: BodyLimits): Promise<Uint8Array> {
  const { maxBytes, idleMs = BODY_IDLE_MS } = limits;
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw requestTooLarge(maxBytes);
  try {
    // A declared length is enforced by the HTTP server, so a small body can be read natively.
    if (declared !== null && Number(declared) <= NATIVE_READ_MAX && request.body) {
      const body = request.body;
      return await readDeclared(request, {
        idleMs,
        // A read that no longer matters: answering ends the connection, which ends the read.
        abort: () => {},
      }).catch((err) => {
        if (err instanceof ReadStreamError) body.cancel().catch(() => {});
        throw err;
      });
    }
    return await readStream(request.body, { maxBytes, idleMs });
  } catch (err) {
    if (!(err instanceof ReadStreamError)) throw err;
    throw err.reason === "too_large" ? requestTooLarge(maxBytes) : bodyTimeout(idleMs);
  }
}

/**
 * A decoder is reusable between whole (non-streaming) decodes: one for every request. The bytes
 * are checked with `isUtf8` first, then decoded without replacement checks: five times cheaper
 * than a fatal decoder, which Deno runs through its generic path, with the same verdicts.
 */
const utf8 = new TextDecoder();
const NOT_JSON = "Request body is not valid JSON";

/** Reads a JSON body; `undefined` when the body is empty (or blank), 400 when it is not UTF-8 JSON. */
export async function readJson(request: Request, limits: BodyLimits): Promise<unknown> {
  const bytes = await readBody(request, limits);
  // JSON is UTF-8 (RFC 8259): other bytes are not JSON either.
  if (!isUtf8(bytes)) throw invalidRequest(NOT_JSON);
  const text = utf8.decode(bytes);
  try {
    return text.trim() === "" ? undefined : JSON.parse(text);
  } catch {
    throw invalidRequest(NOT_JSON);
  }
}

/** Reads a body that must be a JSON object; an empty body is `whenEmpty` if given, else 400. */
export async function readJsonObject(
  request: Request,
  limits: BodyLimits & { whenEmpty?: Record<string, unknown> },
): Promise<Record<string, unknown>> {
  const parsed = await readJson(request, limits);
  if (parsed === undefined) {
    if (limits.whenEmpty) return limits.whenEmpty;
    throw invalidRequest("Request body is empty: expected a JSON object");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw invalidRequest("Request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** Reads an `application/x-www-form-urlencoded` body (an HTML form); other types get 415. */
export async function readForm(request: Request, limits: BodyLimits): Promise<URLSearchParams> {
  const type = request.headers.get("content-type") ?? "";
  if (type.split(";")[0].trim().toLowerCase() !== "application/x-www-form-urlencoded") {
    throw new GatewayError("Expected an application/x-www-form-urlencoded body", {
      status: 415,
      type: "invalid_request_error",
      code: "unsupported_media_type",
    });
  }
  return new URLSearchParams(new TextDecoder().decode(await readBody(request, limits)));
}
