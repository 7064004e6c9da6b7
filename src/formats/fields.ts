/** Field readers shared by the request parsers: each failure is a 400 naming the field. */
import { invalidRequest } from "../errors.ts";

type Json = Record<string, unknown>;

/**
 * Fields some OpenAI-compatible servers and proxies treat as routing or credentials. They choose
 * nothing in ModelGate, and are removed before a body is forwarded so no backend can be steered
 * by a client through them.
 */
export const ROUTING_FIELDS: readonly string[] = [
  "api_base",
  "base_url",
  "api_key",
  "api_version",
  "organization",
  "extra_headers",
  "extra_query",
  "extra_body",
];

/** A shallow copy of a body without {@linkcode ROUTING_FIELDS}. */
export function withoutRoutingFields(body: Json): Json {
  let copy: Json | null = null;
  for (const field of ROUTING_FIELDS) {
    if (!(field in body)) continue;
    copy ??= { ...body };
    delete copy[field];
  }
  return copy ?? body;
}

/** The model named by the body, else the fallback; 400 when neither is a sane name. */
export function modelOf(body: Json, fallback: string | null, param = "model"): string {
  const model = body[param] ?? fallback;
  if (model === undefined || model === null) throw invalidRequest("Missing required field", param);
  if (typeof model !== "string" || model.trim() === "" || model.length > 256) {
    throw invalidRequest("Field must be a non-empty string of at most 256 characters", param);
  }
  return model;
}

/** An optional boolean field. */
export function optionalBoolean(body: Json, key: string, param = key): boolean | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "boolean") throw invalidRequest("Field must be a boolean", param);
  return value;
}

/** An optional string field. */
export function optionalString(body: Json, key: string, param = key): string | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw invalidRequest("Field must be a string", param);
  return value;
}

/** An optional whole number from `min` to `max`. */
export function optionalInt(
  body: Json,
  key: string,
  bounds: { min: number; max: number },
  param = key,
): number | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < bounds.min ||
    value > bounds.max
  ) {
    throw invalidRequest(`Field must be a whole number from ${bounds.min} to ${bounds.max}`, param);
  }
  return value;
}

/** An optional JSON object field. */
export function optionalObject(body: Json, key: string, param = key): Json | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest("Field must be an object", param);
  }
  return value as Json;
}

/** An optional array field. */
export function optionalArray(body: Json, key: string, param = key): unknown[] | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw invalidRequest("Field must be an array", param);
  return value;
}

/** The largest answer any request may ask for, in tokens. */
export const MAX_ANSWER_TOKENS = 100_000_000;
/** The most dimensions an embedding request may ask for. */
export const MAX_DIMENSIONS = 65_536;
/** The most answers (`n`) one request may ask for. */
export const MAX_CHOICES = 128;

/** `max_completion_tokens` or `max_tokens`, when given. */
export function maxTokensOf(body: Json): number | null {
  const bounds = { min: 1, max: MAX_ANSWER_TOKENS };
  return optionalInt(body, "max_completion_tokens", bounds) ??
    optionalInt(body, "max_tokens", bounds);
}

/**
 * A text input (`prompt` or `input`): a string, a non-empty list of strings, a list of token ids,
 * or a non-empty list of token id lists. Returns how many separate inputs it holds.
 */
export function textInputCount(value: unknown, param: string): number {
  if (typeof value === "string") return 1;
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidRequest("Field must be a string or a non-empty array", param);
  }
  if (value.every((item) => typeof item === "string")) return value.length;
  if (value.every((item) => Number.isInteger(item))) return 1;
  if (
    value.every((item) =>
      Array.isArray(item) && item.length > 0 && item.every((id) => Number.isInteger(id))
    )
  ) {
    return value.length;
  }
  throw invalidRequest(
    "Field must be a string, a list of strings, a list of token ids or a list of token id lists",
    param,
  );
}
