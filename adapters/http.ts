/** Shared upstream HTTP plumbing: timeouts, transport errors and the backend's own error answers. */
import { clientClosed, GatewayError, upstreamError, upstreamTimeout } from "../src/errors.ts";
import { type ConnectProbe, createConnectProbe } from "./connect_probe.ts";
import { deadlines } from "../src/deadlines.ts";
import {
  NATIVE_READ_MAX,
  readDeclared,
  readStream,
  ReadStreamError,
} from "../src/http/read_stream.ts";
import type { AdapterDeps, BackendConfig } from "./types.ts";

const probes = new WeakMap<BackendConfig, ConnectProbe>();

/** The connect probe of a backend, made on first use. */
function probeOf(config: BackendConfig): ConnectProbe {
  let probe = probes.get(config);
  if (!probe) {
    probe = createConnectProbe(config);
    probes.set(config, probe);
  }
  return probe;
}

const headerPairs = new WeakMap<BackendConfig, [string, string][]>();
const utf8 = new TextDecoder();

/** The controller of each upstream call, to end the read of its body. */
const aborters = new WeakMap<Response, AbortController>();

/** One upstream call as an adapter describes it. */
export interface UpstreamCall {
  /** Path appended to the backend's base URL (a constant chosen by the adapter). */
  path: string;
  method?: "GET" | "POST";
  /** JSON body; sent as one string so headers and body leave in one write. */
  body?: unknown;
  signal?: AbortSignal;
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_CLIENT_MESSAGE_CHARS = 500;

/**
 * Headers for every call to this backend: credential and static headers from the config only.
 * Built once per backend (as name/value pairs fetch copies for each call).
 */
export function upstreamHeaders(config: BackendConfig): [string, string][] {
  let pairs = headerPairs.get(config);
  if (!pairs) {
    const headers = new Headers(config.headers);
    headers.set("content-type", "application/json");
    headers.set("accept", "application/json, text/event-stream");
    if (config.apiKey) headers.set(config.authHeader, `${config.authPrefix}${config.apiKey}`);
    pairs = [...headers];
    headerPairs.set(config, pairs);
  }
  return pairs;
}

/**
 * Calls the backend and returns its response once the headers arrive. Transport failures become 502,
 * no headers within `firstByteMs` becomes 504, and a non-2xx answer becomes a GatewayError.
 */
export async function callUpstream(
  deps: AdapterDeps,
  config: BackendConfig,
  call: UpstreamCall,
): Promise<Response> {
  const url = config.baseUrl + call.path;
  const probe = probeOf(config);
  await probe.ensure();
  // The caller's signal and the first-byte timer only guard the wait for headers: a stream that
  // outlives them is ended by cancelling its body, never by a timer set before it started.
  const controller = new AbortController();
  let timedOut = false;
  const deadline = deadlines.after(config.timeouts.firstByteMs, () => {
    timedOut = true;
    controller.abort();
  });
  const onAbort = () => controller.abort(call.signal?.reason);
  call.signal?.addEventListener("abort", onAbort, { once: true });
  let response: Response;
  try {
    response = await deps.fetch(url, {
      method: call.method ?? "POST",
      headers: upstreamHeaders(config),
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal: controller.signal,
    });
  } catch (err) {
    if (timedOut) throw upstreamTimeout(`Backend "${config.name}" did not answer in time`, err);
    if (call.signal?.aborted) {
      // The gateway's own stop reason (shutdown) is told to the client; otherwise the client left.
      throw call.signal.reason instanceof GatewayError ? call.signal.reason : clientClosed(err);
    }
    throw upstreamError(`Backend "${config.name}" could not be reached`, err);
  } finally {
    deadline.cancel();
    call.signal?.removeEventListener("abort", onAbort);
  }
  probe.markOk();
  // Aborting the call now ends the body's read: kept for reading a JSON answer.
  aborters.set(response, controller);
  if (!response.ok) throw await upstreamStatusError(deps, config, response, call.signal);
  return response;
}

/**
 * Maps a backend's error answer to the client-facing error. A 4xx keeps its status and the
 * backend's own message (one line, bounded, with every backend address and credential removed);
 * the gateway's credential being refused, and every 5xx, become 502 so the client is not told
 * its key is wrong. The raw text stays in the error's cause, for the log only.
 */
export async function upstreamStatusError(
  deps: AdapterDeps,
  config: BackendConfig,
  response: Response,
  signal?: AbortSignal,
): Promise<GatewayError> {
  let text = "";
  try {
    const bytes = await readStream(response.body, {
      maxBytes: MAX_ERROR_BODY_BYTES,
      idleMs: config.timeouts.idleMs,
      signal,
      truncate: true,
    });
    text = utf8.decode(bytes);
  } catch {
    // A stalled or broken error body still gives its status.
  }
  const detail = { status: response.status, body: text, backend: config.name };
  const status = response.status;
  if (status === 401 || status === 403 || status === 407 || status >= 500 || status < 400) {
    return upstreamError(`Backend "${config.name}" answered with HTTP ${status}`, detail);
  }
  const message = sanitizeMessage(deps, extractMessage(text)) ??
    `Backend "${config.name}" refused the request with HTTP ${status}`;
  const code = status === 404 ? "model_not_found" : status === 429 ? "rate_limit_exceeded" : null;
  const type = status === 429 ? "rate_limit_error" : "invalid_request_error";
  const headers: Record<string, string> = {};
  const retryAfter = response.headers.get("retry-after");
  if (status === 429 && retryAfter && /^\d{1,6}$/.test(retryAfter)) {
    headers["retry-after"] = retryAfter;
  }
  return new GatewayError(message, { status, type, code, headers, cause: detail });
}

/** Pulls `error.message`, `error` (string) or `message` out of a JSON error body. */
function extractMessage(text: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (!parsed || typeof parsed !== "object") return null;
  const record = parsed as Record<string, unknown>;
  const error = record.error;
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    const message = (error as Record<string, unknown>).message;
    if (typeof message === "string") return message;
  }
  return typeof record.message === "string" ? record.message : null;
}

/** Keeps a backend message safe to show: one line, bounded, no backend address or credential. */
function sanitizeMessage(deps: AdapterDeps, message: string | null): string | null {
  if (!message) return null;
  let clean = deps.redact(message.replace(/[\r\n]+/g, " ").trim());
  if (clean.length > MAX_CLIENT_MESSAGE_CHARS) {
    clean = clean.slice(0, MAX_CLIENT_MESSAGE_CHARS) + "…";
  }
  return clean || null;
}

/**
 * Reads the JSON body of a successful upstream answer, bounded by `server.max_response_bytes`
 * (after decompression) and the backend's `idle_ms`, and abandoned when `signal` aborts. A body
 * that is too large, stalls or is not a JSON object is a 502/504.
 */
export async function readUpstreamJson(
  deps: AdapterDeps,
  config: BackendConfig,
  response: Response,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const { body, raw } = await readUpstreamAnswer(deps, config, response, signal);
  // Whoever passes this very object on unchanged may send the bytes it came in.
  rawBytes.set(body, raw);
  return body;
}

/** The bytes a parsed answer came in, for as long as the object is passed on unchanged. */
const rawBytes = new WeakMap<object, Uint8Array>();

/** The exact bytes `body` was parsed from, if it is an upstream answer object itself. */
export function rawBytesOf(body: object): Uint8Array | undefined {
  return rawBytes.get(body);
}

async function readUpstreamAnswer(
  deps: AdapterDeps,
  config: BackendConfig,
  response: Response,
  signal?: AbortSignal,
): Promise<{ body: Record<string, unknown>; raw: Uint8Array }> {
  let bytes: Uint8Array;
  const declared = Number(response.headers.get("content-length") ?? NaN);
  const controller = aborters.get(response);
  try {
    // A plain body of known, small length is read natively; a compressed one (its inflated size
    // unknown) or one of unknown length is counted chunk by chunk.
    bytes = controller && declared <= Math.min(deps.maxResponseBytes, NATIVE_READ_MAX) &&
        !response.headers.has("content-encoding")
      ? await readDeclared(response, {
        idleMs: config.timeouts.idleMs,
        signal,
        abort: () => controller.abort(),
        abortEndsRead: true,
      })
      : await readStream(response.body, {
        maxBytes: deps.maxResponseBytes,
        idleMs: config.timeouts.idleMs,
        signal,
      });
  } catch (err) {
    if (!(err instanceof ReadStreamError)) {
      throw upstreamError(`Backend "${config.name}" failed while sending its answer`, err, true);
    }
    if (err.reason === "too_large") {
      throw upstreamError(
        `Backend "${config.name}" sent an answer larger than ${deps.maxResponseBytes} bytes`,
        err,
        true,
      );
    }
    if (err.reason === "idle") {
      throw upstreamTimeout(
        `Backend "${config.name}" stopped sending before its answer was complete`,
        err,
        true,
      );
    }
    throw err.abortReason instanceof GatewayError ? err.abortReason : clientClosed(err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(bytes));
  } catch (err) {
    throw upstreamError(`Backend "${config.name}" sent a body that is not JSON`, err, true);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw upstreamError(`Backend "${config.name}" sent an unexpected body`, undefined, true);
  }
  return { body: parsed as Record<string, unknown>, raw: bytes };
}
