/**
 * The stream meter: forwards a streamed answer to the client as it arrives and learns, on the way,
 * what the request used. It knows no wire format: the format's inspector reads each event, and
 * the framing (SSE or NDJSON) says where events end.
 *
 * It is pulled by the client, so backpressure holds: a client that does not read leaves the
 * backend unread. Nothing is kept beyond the event being completed; chunks made only of whole
 * events that pass unchanged are forwarded as the very bytes that arrived. A backend that fails,
 * stalls for `idleMs`, sends an over-long event or an error event of its own ends the stream with
 * one error event of the client's format (never the backend's own text).
 */
import type { Usage } from "../../adapters/types.ts";
import type { Framing, Inspector } from "../formats/types.ts";
import { LineSplitter, LineTooLongError, MAX_LINE_BYTES } from "../lines.ts";

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
  /** Events that carried output: a lower bound on completion tokens when usage is missing. */
  outputEvents: number;
  /** Milliseconds from the request's start to the first event with output. */
  ttftMs: number | null;
}

/** Options for {@linkcode meterStream}. */
export interface MeterOptions {
  framing: Framing;
  inspect: Inspector;
  /** One complete error event of the client's format; `eventsSent` went before it. */
  errorEvent: (code: string, message: string, eventsSent: number) => Uint8Array;
  /** Longest wait for the next upstream chunk while the client is waiting. */
  idleMs: number;
  /** Longest event (SSE) or line (NDJSON), in bytes. */
  maxEventBytes?: number;
  /** Time source in ms; `startedAt` is the start of the request, for TTFT. */
  now: () => number;
  startedAt: number;
  /** Called exactly once when the stream ends, whatever the reason. */
  onEnd: (summary: StreamSummary) => void;
  /** Aborted when the gateway stops waiting for open streams (shutdown deadline). */
  stop?: AbortSignal;
  /** Called when the upstream failed, stalled or misbehaved, for logs. */
  onFault?: (outcome: StreamOutcome, cause: unknown) => void;
}

const encoder = new TextEncoder();

const FAULTS: Record<"timeout" | "error" | "upstream_error", [string, string]> = {
  timeout: ["upstream_timeout", "The backend stopped sending before the response was complete"],
  error: ["server_shutting_down", "The gateway is shutting down; the response is incomplete"],
  upstream_error: ["upstream_error", "The backend failed before the response was complete"],
};

/** Wraps an upstream stream in the client's format; see the module comment. */
export function meterStream(
  upstream: ReadableStream<Uint8Array>,
  options: MeterOptions,
): ReadableStream<Uint8Array> {
  const maxEventBytes = options.maxEventBytes ?? MAX_LINE_BYTES;
  const reader = upstream.getReader();
  const lines = new LineSplitter(maxEventBytes);
  const sse = options.framing === "sse";
  let event: string[] = [];
  let eventSize = 0;
  let usage: Usage | null = null;
  let outputEvents = 0;
  let eventsSent = 0;
  let ttftMs: number | null = null;
  let ended = false;
  /** Why the meter cancelled its own read (idle timer or shutdown), if it did. */
  let interrupted: "timeout" | "error" | null = null;

  // The idle timer watches only reads the client is waiting for, and is armed once per
  // `idleMs` rather than once per chunk.
  let readingSince: number | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onTimer = () => {
    timer = undefined;
    if (readingSince === null || ended) return;
    const waited = options.now() - readingSince;
    if (waited >= options.idleMs) return interrupt("timeout");
    timer = setTimeout(onTimer, options.idleMs - waited);
  };
  const interrupt = (why: "timeout" | "error") => {
    interrupted ??= why;
    reader.cancel(new Error(why === "timeout" ? "idle timeout" : "gateway stopping")).catch(
      () => {},
    );
  };
  const onStop = () => interrupt("error");

  const end = (outcome: StreamOutcome) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    options.stop?.removeEventListener("abort", onStop);
    options.onEnd({ outcome, usage, outputEvents, ttftMs });
  };

  /** What the meter decided about one stream so far. */
  const state = { done: false, failed: false, changed: false };

  /** Handles one complete event; returns its text to send (may be the original) or null. */
  const handle = (eventLines: string[]): string | null => {
    const data = sse ? dataOf(eventLines) : eventLines[0];
    if (data === null) {
      eventsSent++;
      return eventText(eventLines, sse);
    }
    const verdict = options.inspect(data);
    if (verdict.output) {
      outputEvents++;
      ttftMs ??= options.now() - options.startedAt;
    }
    if (verdict.usage) usage = verdict.usage;
    if (verdict.error) {
      state.failed = true;
      state.changed = true;
      return null;
    }
    if (verdict.end) state.done = true;
    if (verdict.replacement === undefined) {
      eventsSent++;
      return eventText(eventLines, sse);
    }
    state.changed = true;
    if (verdict.replacement === null) return null;
    eventsSent++;
    if (!sse) return verdict.replacement + "\n";
    const other = eventLines.filter((line) => !line.startsWith("data:"));
    return [...other, `data: ${verdict.replacement}`].join("\n") + "\n\n";
  };

  /** Turns lines into complete events; returns the text to send. */
  const consume = (rawLines: string[]): string => {
    let out = "";
    for (const line of rawLines) {
      if (state.done || state.failed) break;
      if (!sse) {
        if (line.trim() === "") {
          state.changed = true;
          continue;
        }
        const text = handle([line]);
        if (text !== null) out += text;
        continue;
      }
      if (line !== "") {
        eventSize += line.length;
        if (eventSize > maxEventBytes) throw new LineTooLongError(maxEventBytes);
        event.push(line);
        continue;
      }
      if (event.length === 0) continue;
      const text = handle(event);
      event = [];
      eventSize = 0;
      if (text !== null) out += text;
    }
    return out;
  };

  const fail = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    outcome: "timeout" | "error" | "upstream_error",
    cause: unknown,
  ) => {
    options.onFault?.(outcome, cause);
    const [code, message] = FAULTS[outcome];
    controller.enqueue(options.errorEvent(code, message, eventsSent));
    controller.close();
    reader.cancel(cause).catch(() => {});
    end(outcome);
  };

  const finish = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    controller.close();
    // The end event was sent: a backend that keeps the connection open is not waited for.
    reader.cancel().catch(() => {});
    end("completed");
  };

  if (options.stop?.aborted) interrupted = "error";
  options.stop?.addEventListener("abort", onStop, { once: true });

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Loop until there is something to send, so a dropped event does not end a pull empty.
      while (true) {
        if (interrupted) return fail(controller, interrupted, new Error(interrupted));
        readingSince = options.now();
        timer ??= setTimeout(onTimer, options.idleMs);
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (err) {
          if (ended) return;
          return fail(controller, interrupted ?? "upstream_error", err);
        } finally {
          readingSince = null;
        }
        // The client left while the read was pending: cancel() already ended the stream.
        if (ended) return;
        if (interrupted) return fail(controller, interrupted, new Error(interrupted));
        // Whole events that pass unchanged are forwarded as the bytes that came.
        const clean = event.length === 0 && lines.idle;
        state.changed = false;
        let text: string;
        try {
          if (result.done) {
            const rest = lines.flush();
            text = consume(rest === null ? [""] : [rest, ""]);
          } else {
            text = consume(lines.push(result.value));
          }
        } catch (err) {
          // An over-long line or event: the backend is not speaking the format.
          return fail(controller, "upstream_error", err);
        }
        // Same length as the decoded chunk, nothing held back or changed: the same text.
        const aligned = clean && !result.done && !state.changed && event.length === 0 &&
          lines.idle && text.length === lines.lastTextLength;
        if (text) controller.enqueue(aligned ? result.value! : encoder.encode(text));
        if (state.failed) return fail(controller, "upstream_error", new Error("error event"));
        if (state.done) return finish(controller);
        if (result.done) {
          return fail(controller, "upstream_error", new Error("stream ended before its end event"));
        }
        if (text) return;
      }
    },
    cancel(reason) {
      end("client_cancelled");
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** The joined `data:` payload of an SSE event, or null when it has none. */
function dataOf(lines: string[]): string | null {
  let data: string | null = null;
  for (const line of lines) {
    if (!line.startsWith("data:")) continue;
    const value = line.slice(line.charCodeAt(5) === 32 ? 6 : 5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}

function eventText(lines: string[], sse: boolean): string {
  return sse ? lines.join("\n") + "\n\n" : lines[0] + "\n";
}
