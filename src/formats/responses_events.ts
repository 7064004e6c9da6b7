/**
 * Responses API stream events: what the stream meter learns from one, how one is written, and
 * the event that reports a failure. Works on translated streams and on OpenAI's own alike.
 */
import type { Usage } from "../../adapters/types.ts";
import { usageFromCounts } from "../usage/counts.ts";
import { isObject } from "./responses_response.ts";
import { type EventInfo, PLAIN_EVENT } from "./types.ts";

const encoder = new TextEncoder();

/** OpenAI writes `type` first; reading it there spares parsing every delta of a long stream. */
const LEADING_TYPE = /^\{\s*"type"\s*:\s*"([^"\\]*)"/;

/** The events that carry the final Response and so its usage: the only ones parsed. */
const USAGE_EVENTS = new Set(["response.completed", "response.incomplete", "response.failed"]);

const OUTPUT_EVENT: Readonly<EventInfo> = Object.freeze({
  output: true,
  usage: null,
  end: false,
  error: false,
});

const ERROR_EVENT: Readonly<EventInfo> = Object.freeze({
  output: false,
  usage: null,
  end: false,
  error: true,
});

/**
 * One event in OpenAI's framing: an `event:` line naming the type, then the JSON with `type` and
 * `sequence_number` first. `type` must be one of the API's constant names (it is not escaped);
 * JSON.stringify escapes CR and LF in every value, so no value can inject a line.
 */
export function responsesEvent(
  type: string,
  sequenceNumber: number,
  fields: Record<string, unknown>,
): string {
  const data = JSON.stringify({ type, sequence_number: sequenceNumber, ...fields });
  return `event: ${type}\ndata: ${data}\n\n`;
}

/**
 * The `error` event that reports a failure mid-stream. The openai SDK throws an APIError on it
 * (it ignores `response.failed`, which only changes the final status) and the AI SDK reports
 * both as an error. The error sits in a nested `error` object, as OpenAI sends it, which both
 * SDKs read; `sequenceNumber` is the position of the event in the stream (the number of events
 * before it), when the writer knows it.
 */
export function responsesErrorEvent(code: string, message: string, sequenceNumber = 0): Uint8Array {
  return encoder.encode(responsesErrorText(code, message, sequenceNumber));
}

/** {@linkcode responsesErrorEvent} as text. */
export function responsesErrorText(code: string, message: string, sequenceNumber: number): string {
  return responsesEvent("error", sequenceNumber, {
    error: { type: "api_error", code, message, param: null },
  });
}

/**
 * What one event tells the meter (`data` is the event's `data:` payload): deltas are output,
 * `response.completed`/`response.incomplete` end the stream with their usage, `error` and
 * `response.failed` report a failure (with usage, should a backend report any).
 */
export function responsesEventInfo(data: string): EventInfo {
  let type: string | undefined = LEADING_TYPE.exec(data)?.[1];
  let event: Record<string, unknown> | null = null;
  if (type === undefined || USAGE_EVENTS.has(type)) {
    event = parseObject(data);
    if (event === null) return PLAIN_EVENT;
    type = typeof event.type === "string" ? event.type : undefined;
  }
  switch (type) {
    case undefined:
      // A chat-style `{"error":{...}}` in a Responses stream is a failure all the same.
      return event?.error !== undefined && event.error !== null ? ERROR_EVENT : PLAIN_EVENT;
    case "error":
      return ERROR_EVENT;
    case "response.failed":
      return { ...ERROR_EVENT, usage: responseUsage(event) };
    case "response.completed":
    case "response.incomplete":
      return { output: false, usage: responseUsage(event), end: true, error: false };
    default:
      return type.endsWith(".delta") ? OUTPUT_EVENT : PLAIN_EVENT;
  }
}

function parseObject(data: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(data);
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

/** `response.usage` (input/output tokens), validated; the total is recomputed. */
function responseUsage(event: Record<string, unknown> | null): Usage | null {
  const response = event?.response;
  const usage = isObject(response) ? response.usage : null;
  return isObject(usage) ? usageFromCounts(usage.input_tokens, usage.output_tokens) : null;
}
