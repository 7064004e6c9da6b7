/** Chat Completions SSE -> Responses API typed events, translated as the chat events arrive. */
import { LineSplitter } from "../lines.ts";
import { responsesErrorText, responsesEvent } from "./responses_events.ts";
import {
  createCallIds,
  functionCallItem,
  isObject,
  itemId,
  messageItem,
  type Outcome,
  outcomeOf,
  outputText,
  type ResponseContext,
  responseObject,
  responsesUsage,
  toolArguments,
} from "./responses_response.ts";

type Json = Record<string, unknown>;

/** The message being written. Its text is kept for the `.done` events: bounded by the answer. */
interface OpenMessage {
  index: number;
  id: string;
  text: string;
}

/** A tool call being written; its arguments are kept for the `.done` events likewise. */
interface OpenCall {
  index: number;
  id: string;
  callId: string;
  name: string;
  args: string;
}

const encoder = new TextEncoder();

/**
 * Builds the transform. `response.created` and `response.in_progress` go out at once; text and
 * tool-call arguments go out as deltas as they arrive; the finish reason closes the open items;
 * `[DONE]` sends `response.completed` (or `response.incomplete` when the backend hit
 * `max_tokens`) with the usage of the chat usage chunk, or `usage: null` when there was none
 * that is sane. A chat error event becomes one `error` event with a generic message. A stream
 * that ends without `[DONE]` gets nothing more: the meter sees no end event and reports the cut.
 */
export function chatSseToResponses(ctx: ResponseContext): TransformStream<Uint8Array, Uint8Array> {
  const lines = new LineSplitter();
  const callId = createCallIds(ctx);
  /** Final form of each output item, by output index (for the terminal event). */
  const output: Json[] = [];
  const calls = new Map<number | string, OpenCall>();
  let data: string[] = [];
  let sequence = 0;
  let items = 0;
  let message: OpenMessage | null = null;
  let lastCall: number | string = 0;
  let outcome: Outcome | null = null;
  let usage: Json | null = null;
  let ended = false;
  let out = "";

  const emit = (type: string, fields: Json) => {
    out += responsesEvent(type, sequence++, fields);
  };
  const lifecycle = (type: string) =>
    emit(type, { response: responseObject(ctx, "in_progress", []) });

  const openMessage = (): OpenMessage => {
    const index = items++;
    const opened = { index, id: itemId(ctx, "msg", index), text: "" };
    emit("response.output_item.added", {
      output_index: index,
      item: messageItem(opened.id, "in_progress", []),
    });
    emit("response.content_part.added", { ...textPlace(opened), part: outputText("") });
    return opened;
  };

  const closeMessage = (status: string) => {
    if (message === null) return;
    const { index, text } = message;
    emit("response.output_text.done", { ...textPlace(message), text, logprobs: [] });
    emit("response.content_part.done", { ...textPlace(message), part: outputText(text) });
    output[index] = messageItem(message.id, status, [outputText(text)]);
    emit("response.output_item.done", { output_index: index, item: output[index] });
    message = null;
  };

  const textDelta = (delta: string) => {
    message ??= openMessage();
    message.text += delta;
    emit("response.output_text.delta", { ...textPlace(message), delta, logprobs: [] });
  };

  const callDelta = (delta: Json) => {
    // Calls are told apart by index; a backend that sends none starts each call with its id.
    const key = typeof delta.index === "number" && Number.isSafeInteger(delta.index)
      ? delta.index
      : typeof delta.id === "string" && delta.id !== ""
      ? `id:${delta.id}`
      : lastCall;
    lastCall = key;
    const fn = isObject(delta.function) ? delta.function : {};
    let call = calls.get(key);
    if (call === undefined) {
      // Items are written one after the other: the text so far is complete.
      closeMessage("completed");
      const index = items++;
      const name = typeof fn.name === "string" ? fn.name : "";
      call = {
        index,
        id: itemId(ctx, "fc", index),
        callId: callId(delta.id, index),
        name,
        args: "",
      };
      calls.set(key, call);
      emit("response.output_item.added", {
        output_index: index,
        item: functionCallItem(call.id, call, "in_progress"),
      });
    } else if (call.name === "" && typeof fn.name === "string") {
      call.name = fn.name;
    }
    const args = typeof fn.arguments === "string" ? fn.arguments : toolArguments(fn.arguments);
    if (fn.arguments === undefined || fn.arguments === null || args === "") return;
    call.args += args;
    emit("response.function_call_arguments.delta", {
      item_id: call.id,
      output_index: call.index,
      delta: args,
    });
  };

  /** The backend's choice is over: every open item is complete (or cut by `max_tokens`). */
  const finishItems = (finishReason: unknown) => {
    outcome = outcomeOf(finishReason);
    if (items === 0) message = openMessage();
    closeMessage(outcome.status);
    for (const call of calls.values()) {
      call.args ||= "{}";
      emit("response.function_call_arguments.done", {
        item_id: call.id,
        output_index: call.index,
        arguments: call.args,
      });
      output[call.index] = functionCallItem(call.id, call, outcome.status);
      emit("response.output_item.done", { output_index: call.index, item: output[call.index] });
    }
    calls.clear();
  };

  const handleChunk = (chunk: Json) => {
    if ((chunk.error !== undefined && chunk.error !== null) || chunk.object === "error") {
      ended = true;
      // The backend's own text stays out: it may name internals.
      out += responsesErrorText(
        "upstream_error",
        "The backend failed before the response was complete",
        sequence++,
      );
      return;
    }
    usage = responsesUsage(chunk.usage) ?? usage;
    const choice = Array.isArray(chunk.choices)
      ? chunk.choices.find((c) => isObject(c) && (c.index ?? 0) === 0)
      : undefined;
    if (!isObject(choice) || outcome !== null) return;
    const delta = isObject(choice.delta) ? choice.delta : {};
    if (typeof delta.content === "string" && delta.content !== "") textDelta(delta.content);
    if (Array.isArray(delta.tool_calls)) delta.tool_calls.filter(isObject).forEach(callDelta);
    if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
      finishItems(choice.finish_reason);
    }
  };

  const handleEvent = () => {
    const payload = data.join("\n");
    data = [];
    if (ended) return;
    if (payload === "[DONE]") {
      if (outcome === null) finishItems(null);
      const final = outcome ?? outcomeOf(null);
      ended = true;
      emit(final.status === "incomplete" ? "response.incomplete" : "response.completed", {
        response: responseObject(ctx, final.status, output, { outcome: final, usage }),
      });
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(payload);
    } catch {
      throw new Error("The backend sent a stream event that is not JSON");
    }
    if (isObject(chunk)) handleChunk(chunk);
  };

  const handleLine = (line: string) => {
    if (line === "") {
      if (data.length > 0) handleEvent();
    } else if (line.startsWith("data:")) {
      data.push(line.slice(line.charAt(5) === " " ? 6 : 5));
    }
  };

  const send = (controller: TransformStreamDefaultController<Uint8Array>) => {
    if (out === "") return;
    controller.enqueue(encoder.encode(out));
    out = "";
  };

  return new TransformStream({
    start(controller) {
      lifecycle("response.created");
      lifecycle("response.in_progress");
      send(controller);
    },
    transform(bytes, controller) {
      for (const line of lines.push(bytes)) handleLine(line);
      send(controller);
    },
    flush(controller) {
      const rest = lines.flush();
      if (rest !== null) handleLine(rest);
      handleLine("");
      send(controller);
    },
  });
}

/** Where a message's one text part is. */
function textPlace(message: OpenMessage): Json {
  return { item_id: message.id, output_index: message.index, content_index: 0 };
}
