/** The stream meter: passes OpenAI SSE through event by event and learns usage on the way. */
import { readUsage } from "../../adapters/openai_compat.ts";
import type { Usage } from "../../adapters/types.ts";
import { LineSplitter } from "../lines.ts";
import { sseEvent } from "../sse.ts";

/** How a stream ended. */
export type StreamOutcome =
  | "completed"
  | "client_cancelled"
  | "upstream_error"
  | "timeout"
  | "error";

/** What the meter learned once the stream is over. */
export interface StreamSummary {
  outcome: StreamOutcome;
  /** Usage the backend reported, or null when the stream ended before it did. */
  usage: Usage | null;
  /** Events that carried choices: a lower bound on completion tokens when usage is missing. */
  choiceEvents: number;
  /** Milliseconds from the meter's start to the first event with choices. */
  ttftMs: number | null;
}

/** Options for {@linkcode meterStream}. */
export interface MeterOptions {
  /** Drop the usage-only chunk (and `usage` fields) the client did not ask for. */
  stripUsage: boolean;
  /** Longest wait for the next upstream chunk. */
  idleMs: number;
  /** Time source in ms; the start of the request for TTFT. */
  now: () => number;
  startedAt: number;
  /** Called exactly once when the stream ends, whatever the reason. */
  onEnd: (summary: StreamSummary) => void;
  /** Aborted when the gateway stops waiting for open streams (shutdown deadline). */
  stop?: AbortSignal;
  /** Called when the upstream failed or stalled, for logs. */
  onFault?: (outcome: StreamOutcome, cause: unknown) => void;
}

const encoder = new TextEncoder();
const IDLE = Symbol("idle");
const STOP = Symbol("stop");
const EMPTY_CHOICES = /"choices"\s*:\s*\[\s*\]/;

/**
 * Wraps an OpenAI SSE stream. It is pulled by the client, so backpressure holds and nothing is
 * buffered beyond the current event; a client that leaves cancels the upstream. An upstream error
 * or stall after the first byte becomes one `data: {"error":...}` event and the stream ends.
 */
export function meterStream(
  upstream: ReadableStream<Uint8Array>,
  options: MeterOptions,
): ReadableStream<Uint8Array> {
  const reader = upstream.getReader();
  const lines = new LineSplitter();
  let event: string[] = [];
  let usage: Usage | null = null;
  let choiceEvents = 0;
  let ttftMs: number | null = null;
  let sawDone = false;
  let sawError = false;
  let ended = false;

  // One listener per stream on the shared stop signal, removed when the stream ends.
  let onStop = () => {};
  const stopped = new Promise<typeof STOP>((resolve) => {
    onStop = () => resolve(STOP);
    if (options.stop?.aborted) resolve(STOP);
    options.stop?.addEventListener("abort", onStop, { once: true });
  });

  const end = (outcome: StreamOutcome) => {
    if (ended) return;
    ended = true;
    options.stop?.removeEventListener("abort", onStop);
    options.onEnd({ outcome, usage, choiceEvents, ttftMs });
  };

  /** Decides what one complete event becomes; returns the text to send or null to drop it. */
  const handleEvent = (eventLines: string[]): string | null => {
    const dataLines = eventLines.filter((line) => line.startsWith("data:"));
    if (dataLines.length === 0) return eventLines.join("\n") + "\n\n";
    const data = dataLines.map((line) => line.slice(line.charAt(5) === " " ? 6 : 5)).join("\n");
    if (data === "[DONE]") {
      sawDone = true;
      return "data: [DONE]\n\n";
    }
    const hasChoices = data.includes('"choices"');
    if (hasChoices && !EMPTY_CHOICES.test(data)) {
      choiceEvents++;
      ttftMs ??= options.now() - options.startedAt;
    }
    const mayBeError = !hasChoices && data.includes('"error"');
    if (!mayBeError && !data.includes('"usage"')) return eventLines.join("\n") + "\n\n";
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(data);
    } catch {
      return eventLines.join("\n") + "\n\n";
    }
    if (mayBeError && (parsed.error !== undefined || parsed.object === "error")) sawError = true;
    usage = readUsage(parsed.usage) ?? usage;
    if (!options.stripUsage || parsed.usage === undefined) return eventLines.join("\n") + "\n\n";
    if (Array.isArray(parsed.choices) && parsed.choices.length === 0) return null;
    delete parsed.usage;
    return `data: ${JSON.stringify(parsed)}\n\n`;
  };

  /** Turns raw lines into complete events to send. */
  const consume = (rawLines: string[]): string => {
    let out = "";
    for (const line of rawLines) {
      if (line !== "") {
        event.push(line);
        continue;
      }
      if (event.length === 0) continue;
      const text = handleEvent(event);
      event = [];
      if (text !== null) out += text;
    }
    return out;
  };

  const fail = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    outcome: StreamOutcome,
    cause: unknown,
  ) => {
    options.onFault?.(outcome, cause);
    const [code, message] = outcome === "timeout"
      ? ["upstream_timeout", "The backend stopped sending before the response was complete"]
      : outcome === "error"
      ? ["server_shutting_down", "The gateway is shutting down; the response is incomplete"]
      : ["upstream_error", "The backend failed before the response was complete"];
    controller.enqueue(sseEvent({ error: { message, type: "api_error", param: null, code } }));
    controller.close();
    reader.cancel(cause).catch(() => {});
    end(outcome);
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Loop until there is something to send, so a dropped event does not end a pull empty.
      while (true) {
        let result: ReadableStreamReadResult<Uint8Array> | typeof IDLE | typeof STOP;
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          result = await Promise.race([
            reader.read(),
            stopped,
            new Promise<typeof IDLE>((resolve) => {
              timer = setTimeout(() => resolve(IDLE), options.idleMs);
            }),
          ]);
        } catch (err) {
          return fail(controller, "upstream_error", err);
        } finally {
          clearTimeout(timer);
        }
        if (result === IDLE) return fail(controller, "timeout", new Error("idle timeout"));
        if (result === STOP) return fail(controller, "error", new Error("gateway shutting down"));
        if (result.done) {
          const rest = lines.flush();
          const tail = consume(rest === null ? [""] : [rest, ""]);
          if (tail) controller.enqueue(encoder.encode(tail));
          if (!sawDone && !sawError) {
            return fail(controller, "upstream_error", new Error("stream ended without [DONE]"));
          }
          controller.close();
          return end(sawError ? "upstream_error" : "completed");
        }
        const text = consume(lines.push(result.value));
        if (text) {
          controller.enqueue(encoder.encode(text));
          return;
        }
      }
    },
    cancel(reason) {
      end("client_cancelled");
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
