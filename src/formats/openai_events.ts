/** Chat Completions and Completions streams: OpenAI's SSE events, read and written. */
import type { Endpoint } from "../../adapters/types.ts";
import { sseEvent } from "../sse.ts";
import { readOpenAiUsage } from "../usage/counts.ts";
import type {
  Codec,
  FormatName,
  Inspector,
  ParseDefaults,
  ParsedRequest,
  Verdict,
} from "./types.ts";
import { PLAIN_EVENT } from "./types.ts";

const END: Verdict = Object.freeze({ ...PLAIN_EVENT, end: true });
const OUTPUT: Verdict = Object.freeze({ ...PLAIN_EVENT, output: true });
const ERROR: Verdict = Object.freeze({ ...PLAIN_EVENT, error: true });
const EMPTY_CHOICES = /"choices"\s*:\s*\[\s*\]/;

/**
 * Reads OpenAI stream events. Only events that may carry usage or an error are parsed; the rest
 * are recognised by a substring test. With `stripUsage`, the usage the gateway asked for on the
 * client's behalf is removed: a usage-only chunk is dropped, a `usage` field riding on a choices
 * chunk (llama.cpp) is deleted.
 */
export function openAiInspector(stripUsage: boolean): Inspector {
  return function inspectOpenAiEvent(data: string): Verdict {
    if (data === "[DONE]") return END;
    const hasChoices = data.includes('"choices"');
    const output = hasChoices && !EMPTY_CHOICES.test(data);
    const mayBeError = !hasChoices && data.includes('"error"');
    if (!mayBeError && !data.includes('"usage"')) return output ? OUTPUT : PLAIN_EVENT;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return output ? OUTPUT : PLAIN_EVENT;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return PLAIN_EVENT;
    const event = parsed as Record<string, unknown>;
    if (mayBeError && (event.error !== undefined || event.object === "error")) return ERROR;
    const usage = readOpenAiUsage(event.usage);
    if (!stripUsage || event.usage === undefined) return { ...PLAIN_EVENT, output, usage };
    if (Array.isArray(event.choices) && event.choices.length === 0) {
      return { ...PLAIN_EVENT, usage, replacement: null };
    }
    delete event.usage;
    return { ...PLAIN_EVENT, output, usage, replacement: JSON.stringify(event) };
  };
}

/** OpenAI's error envelope as the last event of a failed stream. */
export function openAiErrorEvent(code: string, message: string): Uint8Array {
  return sseEvent({ error: { message, type: "api_error", param: null, code } });
}

/** A request of a format the adapters speak as it is (chat, completions). */
export interface OpenAiRequest extends ParsedRequest {
  /** The body to forward (routing-like fields removed; `model` is replaced per backend). */
  body: Record<string, unknown>;
  /** The client asked for the usage chunk of its stream. */
  includeUsage: boolean;
}

/** The codec of a format forwarded as it came, streamed as OpenAI SSE. */
export function openAiCodec<P extends OpenAiRequest>(spec: {
  name: FormatName & Endpoint;
  parse: (body: Record<string, unknown>, defaults: ParseDefaults) => P;
  answerTokens: (body: Record<string, unknown>) => number;
}): Codec<P> {
  return {
    name: spec.name,
    framing: "sse",
    streamType: "text/event-stream; charset=utf-8",
    parse: spec.parse,
    send(adapter, request, context) {
      return adapter.send({
        endpoint: spec.name,
        body: { ...request.body, model: context.upstreamModel },
        stream: request.stream,
        signal: context.signal,
        requestId: context.requestId,
      });
    },
    inspector: (request) => openAiInspector(!request.includeUsage),
    answerTokens: spec.answerTokens,
    errorEvent: openAiErrorEvent,
  };
}
