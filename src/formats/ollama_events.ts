/**
 * Ollama's stream framing (one JSON object per line, `application/x-ndjson`) and its error shape
 * `{"error":"<message>"}`, which ollama-js turns into an Error with that message.
 */
import type { Usage } from "../../adapters/types.ts";
import type { GatewayError } from "../errors.ts";
import { usageFromCounts } from "../usage/counts.ts";
import { type EventInfo, PLAIN_EVENT } from "./types.ts";

/** Content type of an Ollama stream. */
export const OLLAMA_STREAM_TYPE = "application/x-ndjson";

/** What the client reads when the backend fails mid-stream; the backend's own text stays in logs. */
export const OLLAMA_STREAM_FAILED = "The backend failed before the response was complete";

const encoder = new TextEncoder();

/**
 * What one NDJSON line tells the meter, for Ollama's own streams and the translated ones alike:
 * output (text, thinking or tool calls), the end (`"done":true`, with validated counts) or an
 * error. Anything that is not a JSON object tells it nothing.
 */
export function ollamaLineInfo(line: string): EventInfo {
  if (line.trim() === "") return PLAIN_EVENT;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return PLAIN_EVENT;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return PLAIN_EVENT;
  const body = parsed as Record<string, unknown>;
  if (body.error !== undefined && body.error !== null) {
    return { output: false, usage: null, end: false, error: true };
  }
  const end = body.done === true;
  return { output: hasOutput(body), usage: end ? ollamaUsage(body) : null, end, error: false };
}

/**
 * Validated usage from a final line's `prompt_eval_count` and `eval_count`, or null when it has
 * neither. Ollama leaves `prompt_eval_count` out when it reused a cached prompt (0 then), and
 * embeddings have no `eval_count`.
 */
export function ollamaUsage(body: Record<string, unknown>): Usage | null {
  const prompt = body.prompt_eval_count;
  const completion = body.eval_count;
  if (prompt === undefined && completion === undefined) return null;
  return usageFromCounts(prompt ?? 0, completion ?? 0);
}

/** One error line as Ollama ends a failed stream: `{"error":"..."}\n`. */
export function ollamaErrorLine(message: string): Uint8Array {
  return ndjsonLine(ollamaErrorBody(message));
}

/** Ollama's error body: `{"error":"..."}` (a string, never an object). */
export function ollamaErrorBody(message: string): { error: string } {
  return { error: message };
}

/**
 * Any gateway error as Ollama's body. Ollama's shape has no `param`, so the field a 400 is about
 * is named in the text: `Invalid "options.top_p": Field must be a number from 0 to 1`.
 */
export function ollamaErrorOf(err: GatewayError): { error: string } {
  const named = err.status === 400 && err.param !== null;
  return ollamaErrorBody(named ? `Invalid "${err.param}": ${err.message}` : err.message);
}

/** Encodes one NDJSON line; JSON.stringify escapes CR and LF, so no value can end it early. */
export function ndjsonLine(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value) + "\n");
}

function hasOutput(body: Record<string, unknown>): boolean {
  if (nonEmpty(body.response) || nonEmpty(body.thinking)) return true;
  const message = body.message;
  if (!message || typeof message !== "object") return false;
  const m = message as Record<string, unknown>;
  return nonEmpty(m.content) || nonEmpty(m.thinking) ||
    (Array.isArray(m.tool_calls) && m.tool_calls.length > 0);
}

function nonEmpty(value: unknown): boolean {
  return typeof value === "string" && value !== "";
}
