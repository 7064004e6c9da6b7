/**
 * Chat completions SSE (the gateway's internal stream) -> Ollama NDJSON, event by event: one line
 * per text or reasoning delta, tool calls whole in one line as Ollama sends them, then the final
 * `"done":true` line with `done_reason`, counts and durations.
 */
import type { Usage } from "../../adapters/types.ts";
import { LineSplitter } from "../lines.ts";
import { readOpenAiUsage } from "../usage/counts.ts";
import { ndjsonLine, OLLAMA_STREAM_FAILED, ollamaErrorLine } from "./ollama_events.ts";
import {
  asObject,
  createdAt,
  finalFields,
  type OllamaContext,
  reasoningOf,
  toOllamaToolCall,
} from "./ollama_response.ts";

type Json = Record<string, unknown>;
type Controller = TransformStreamDefaultController<Uint8Array>;

/** Characters of tool-call arguments one stream may gather before sending its calls. */
export const MAX_TOOL_CALL_CHARS = 4 * 1024 * 1024;
/** Tool calls one stream may gather. */
export const MAX_TOOL_CALLS = 128;

interface GatheredCall {
  id: string;
  name: string;
  args: string;
}

/**
 * Builds the transform. Memory stays flat in the stream's length: it holds the current event and
 * the tool calls not yet sent (both bounded). A `{"error":...}` event, a data line that is not
 * JSON, or tool calls over the bounds become one `{"error":"..."}` line with the gateway's own
 * message, and the stream ends. A stream that ends without `[DONE]` gets nothing more: the meter
 * reports the cut.
 */
export function chatSseToOllama(
  kind: "chat" | "generate",
  ctx: OllamaContext,
): TransformStream<Uint8Array, Uint8Array> {
  const lines = new LineSplitter();
  let data: string[] = [];
  let finished = false;
  let usage: Usage | null = null;
  let finishReason: unknown = null;
  let firstOutputAt: number | null = null;
  const calls = new Map<number, GatheredCall>();
  let callChars = 0;

  const part = (fields: Json): Json => ({
    model: ctx.model,
    created_at: createdAt(ctx),
    ...fields,
    done: false,
  });
  const started = () => {
    firstOutputAt ??= ctx.now();
  };

  const fail = (controller: Controller) => {
    finished = true;
    calls.clear();
    controller.enqueue(ollamaErrorLine(OLLAMA_STREAM_FAILED));
    controller.terminate();
  };

  /** Adds tool-call fragments; false when the bounds are passed. */
  const gather = (deltas: unknown[]): boolean => {
    for (const [position, raw] of deltas.entries()) {
      const delta = asObject(raw);
      const index = Number.isSafeInteger(delta.index) ? delta.index as number : position;
      let call = calls.get(index);
      if (!call) {
        if (calls.size >= MAX_TOOL_CALLS) return false;
        call = { id: "", name: "", args: "" };
        calls.set(index, call);
      }
      if (typeof delta.id === "string" && delta.id !== "") call.id = delta.id;
      const fn = asObject(delta.function);
      // The name comes whole (some servers repeat it); arguments come in pieces.
      if (typeof fn.name === "string" && fn.name !== "") call.name = fn.name;
      if (typeof fn.arguments === "string") {
        call.args += fn.arguments;
        callChars += fn.arguments.length;
      }
      if (callChars > MAX_TOOL_CALL_CHARS) return false;
    }
    started();
    return true;
  };

  const sendCalls = (controller: Controller) => {
    if (calls.size === 0) return;
    const sorted = [...calls.entries()].sort(([a], [b]) => a - b);
    calls.clear();
    // Generate requests carry no tools, so only chat answers have calls to send.
    if (kind !== "chat") return;
    const toolCalls = sorted.map(([, call], index) =>
      toOllamaToolCall({ id: call.id, function: { name: call.name, arguments: call.args } }, index)
    );
    controller.enqueue(
      ndjsonLine(part({ message: { role: "assistant", content: "", tool_calls: toolCalls } })),
    );
  };

  const sendFinal = (controller: Controller) => {
    sendCalls(controller);
    finished = true;
    const timing = { startedAt: ctx.startedAt, firstOutputAt, endedAt: ctx.now() };
    const empty = kind === "chat"
      ? { message: { role: "assistant", content: "" } }
      : { response: "" };
    controller.enqueue(ndjsonLine({
      model: ctx.model,
      created_at: createdAt(ctx),
      ...empty,
      ...finalFields(finishReason, usage, timing),
    }));
  };

  const handleData = (text: string, controller: Controller) => {
    if (text === "[DONE]") return sendFinal(controller);
    let event: Json;
    try {
      event = asObject(JSON.parse(text));
    } catch {
      return fail(controller);
    }
    if (event.error !== undefined && event.error !== null) return fail(controller);
    if (event.usage !== undefined && event.usage !== null) {
      usage = readOpenAiUsage(event.usage) ?? usage;
    }
    const choices = Array.isArray(event.choices) ? event.choices.map(asObject) : [];
    const choice = choices.find((c) => c.index === 0) ?? choices[0];
    if (!choice) return;
    const delta = asObject(choice.delta);
    if (Array.isArray(delta.tool_calls) && !gather(delta.tool_calls)) return fail(controller);
    const content = typeof delta.content === "string" ? delta.content : "";
    const thinking = ctx.hideThinking ? "" : reasoningOf(delta);
    if (content !== "" || thinking !== "") {
      started();
      const extra = thinking === "" ? {} : { thinking };
      controller.enqueue(ndjsonLine(part(
        kind === "chat"
          ? { message: { role: "assistant", content, ...extra } }
          : { response: content, ...extra },
      )));
    }
    if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
      finishReason = choice.finish_reason;
      sendCalls(controller);
    }
  };

  /** One SSE line: `data:` lines gather into an event that a blank line ends. */
  const handleLine = (line: string, controller: Controller) => {
    if (finished) return;
    if (line === "") {
      if (data.length === 0) return;
      const text = data.join("\n");
      data = [];
      return handleData(text, controller);
    }
    if (line.startsWith("data:")) data.push(line.slice(line.charAt(5) === " " ? 6 : 5));
  };

  return new TransformStream({
    transform(bytes, controller) {
      for (const line of lines.push(bytes)) handleLine(line, controller);
    },
    flush(controller) {
      const rest = lines.flush();
      if (rest !== null) handleLine(rest, controller);
      // A last event without its blank line still counts; a stream cut before [DONE] gets
      // nothing more.
      handleLine("", controller);
    },
  });
}
