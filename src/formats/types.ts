/** The contract of a client-facing wire format's codec (chat, completions, embeddings, ...). */
import type { Usage } from "../../adapters/types.ts";

/** How a format frames a stream: server-sent events, or one JSON object per line. */
export type Framing = "sse" | "ndjson";

/** What the stream meter learns from one complete event (an SSE event or an NDJSON line). */
export interface EventInfo {
  /** The event carries model output (text, a tool call): TTFT and the fallback token count. */
  output: boolean;
  /** Usage the event reports, validated (see src/usage/counts.ts), or null. */
  usage: Usage | null;
  /** The event ends the stream successfully (`[DONE]`, `response.completed`, `"done":true`). */
  end: boolean;
  /** The event reports a failure of the backend. */
  error: boolean;
}

/** An event that tells the meter nothing. */
export const PLAIN_EVENT: Readonly<EventInfo> = Object.freeze({
  output: false,
  usage: null,
  end: false,
  error: false,
});
