/** The contract of a client-facing wire format's codec (chat, completions, embeddings, ...). */
import type { Adapter, Usage } from "../../adapters/types.ts";

/** How a format frames a stream: server-sent events, or one JSON object per line. */
export type Framing = "sse" | "ndjson";

/** The client-facing formats, as the ledger and metrics name them. */
export type FormatName =
  | "chat"
  | "completions"
  | "embeddings"
  | "responses"
  | "ollama_chat"
  | "ollama_generate"
  | "ollama_embed";

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

/**
 * What the meter does with one event: forward it as it came (`replacement` absent), drop it
 * (`null`), or send other data in its place (a string: the new `data:` payload or NDJSON line).
 */
export interface Verdict extends EventInfo {
  replacement?: string | null;
}

/** Reads one event's data (an SSE event's joined `data:` lines, or one NDJSON line). */
export type Inspector = (data: string) => Verdict;

/** What every format's parser learns of a request. */
export interface ParsedRequest {
  /** The model the client asked for (its `model`, or the key's default model). */
  model: string;
  stream: boolean;
  /** Estimated prompt tokens: charged when a backend never reports usage. */
  promptTokens: number;
  /** Tokens to reserve before sending: the prompt estimate plus the most all answers may use. */
  reserveTokens: number;
}

/** Request-independent settings a parser needs. */
export interface ParseDefaults {
  /** The key's default model, used when the body names none. */
  fallbackModel: string | null;
  /** Answer tokens reserved per answer when the request sets no limit. */
  defaultMaxTokens: number;
}

/** An answer in the client's format, ready to send. */
export type ClientAnswer =
  | { kind: "json"; status: number; body: Record<string, unknown>; usage: Usage | null }
  | { kind: "stream"; status: number; stream: ReadableStream<Uint8Array> };

/** What a codec needs to send one request to one backend. */
export interface SendContext {
  /** The name the backend knows the model by. */
  upstreamModel: string;
  /** Aborted when the client leaves or the gateway stops waiting. */
  signal: AbortSignal;
  requestId: string;
  /** Clock in ms. */
  now: () => number;
  /** When the gateway received the request, on the same clock. */
  startedAt: number;
}

/** One client-facing wire format: parse, send (natively or translated), meter, fail. */
export interface Codec<P extends ParsedRequest = ParsedRequest> {
  readonly name: FormatName;
  readonly framing: Framing;
  /** Content type of a streamed answer. */
  readonly streamType: string;
  /** Validates a parsed JSON body; throws a 400 GatewayError naming the field. */
  parse(body: Record<string, unknown>, defaults: ParseDefaults): P;
  /** Sends to one backend; resolves when its answer's headers arrived (2xx) or throws. */
  send(adapter: Adapter, request: P, context: SendContext): Promise<ClientAnswer>;
  /** The inspector of one streamed answer to this request. */
  inspector(request: P): Inspector;
  /** Estimated answer tokens of a non-streamed answer whose backend reported no usage. */
  answerTokens(body: Record<string, unknown>): number;
  /**
   * One complete error event of this format (the last thing a failed stream sends);
   * `eventsSent` events went before it.
   */
  errorEvent(code: string, message: string, eventsSent: number): Uint8Array;
}
