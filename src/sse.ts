/** Server-sent events as OpenAI streams them: `data: <json>` lines separated by a blank line. */

const encoder = new TextEncoder();

/** The terminating event of an OpenAI stream. */
export const SSE_DONE: Uint8Array = encoder.encode("data: [DONE]\n\n");

/**
 * Encodes one `data:` event. JSON.stringify escapes every CR and LF inside strings, so no value
 * (an error message, an id, model output) can end the line early and inject a field or an event.
 */
export function sseEvent(data: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
}
