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
  const writer = new ResponsesWriter(ctx);
  let data: string[] = [];

  /** Feeds one line; a blank line completes the chat event its `data:` lines made. */
  const handleLine = (line: string) => {
    if (line.startsWith("data:")) data.push(line.slice(line.charAt(5) === " " ? 6 : 5));
    if (line !== "" || data.length === 0) return;
    const payload = data.join("\n");
    data = [];
    if (writer.ended) return;
    if (payload === "[DONE]") return writer.done();
    let chunk: unknown;
    try {
      chunk = JSON.parse(payload);
    } catch {
      throw new Error("The backend sent a stream event that is not JSON");
    }
    if (isObject(chunk)) writer.chunk(chunk);
  };

  const send = (controller: TransformStreamDefaultController<Uint8Array>) => {
    const out = writer.take();
    if (out !== "") controller.enqueue(encoder.encode(out));
  };

  return new TransformStream({
    start(controller) {
      writer.start();
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

/** Turns chat chunks into Responses events, collected as text until {@linkcode take}n. */
class ResponsesWriter {
  #ctx: ResponseContext;
  #callId: (backendId: unknown, outputIndex: number) => string;
  /** Final form of each output item, by output index (for the terminal event). */
  #output: Json[] = [];
  #calls = new Map<number | string, OpenCall>();
  #lastCall: number | string = 0;
  #message: OpenMessage | null = null;
  #items = 0;
  #sequence = 0;
  #outcome: Outcome | null = null;
  #usage: Json | null = null;
  #ended = false;
  #out = "";

  constructor(ctx: ResponseContext) {
    this.#ctx = ctx;
    this.#callId = createCallIds(ctx);
  }

  /** True once the stream ended: completed, incomplete or failed. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Returns the events written since the last call. */
  take(): string {
    const out = this.#out;
    this.#out = "";
    return out;
  }

  /** The lifecycle events every Responses stream opens with. */
  start(): void {
    for (const type of ["response.created", "response.in_progress"]) {
      this.#emit(type, { response: responseObject(this.#ctx, "in_progress", []) });
    }
  }

  /** One chat chunk: an error, usage, deltas of the first choice, its finish reason. */
  chunk(chunk: Json): void {
    if ((chunk.error !== undefined && chunk.error !== null) || chunk.object === "error") {
      // The backend's own text stays out: it may name internals.
      const message = "The backend failed before the response was complete";
      this.#out += responsesErrorText("upstream_error", message, this.#sequence++);
      this.#ended = true;
      return;
    }
    this.#usage = responsesUsage(chunk.usage) ?? this.#usage;
    const choice = Array.isArray(chunk.choices)
      ? chunk.choices.find((c) => isObject(c) && (c.index ?? 0) === 0)
      : undefined;
    if (!isObject(choice) || this.#outcome !== null) return;
    const delta = isObject(choice.delta) ? choice.delta : {};
    if (typeof delta.content === "string" && delta.content !== "") this.#text(delta.content);
    if (Array.isArray(delta.tool_calls)) {
      for (const call of delta.tool_calls.filter(isObject)) this.#call(call);
    }
    if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
      this.#finish(choice.finish_reason);
    }
  }

  /** `[DONE]`: closes what is open and sends the final Response. */
  done(): void {
    if (this.#outcome === null) this.#finish(null);
    const outcome = this.#outcome ?? outcomeOf(null);
    this.#ended = true;
    this.#emit(outcome.status === "incomplete" ? "response.incomplete" : "response.completed", {
      response: responseObject(this.#ctx, outcome.status, this.#output, {
        outcome,
        usage: this.#usage,
      }),
    });
  }

  #emit(type: string, fields: Json): void {
    this.#out += responsesEvent(type, this.#sequence++, fields);
  }

  #text(delta: string): void {
    this.#message ??= this.#openMessage();
    this.#message.text += delta;
    this.#emit("response.output_text.delta", { ...textPlace(this.#message), delta, logprobs: [] });
  }

  #openMessage(): OpenMessage {
    const index = this.#items++;
    const message = { index, id: itemId(this.#ctx, "msg", index), text: "" };
    const item = messageItem(message.id, "in_progress", []);
    this.#emit("response.output_item.added", { output_index: index, item });
    this.#emit("response.content_part.added", { ...textPlace(message), part: outputText("") });
    return message;
  }

  #closeMessage(status: string): void {
    const message = this.#message;
    if (message === null) return;
    const { index, text } = message;
    this.#emit("response.output_text.done", { ...textPlace(message), text, logprobs: [] });
    this.#emit("response.content_part.done", { ...textPlace(message), part: outputText(text) });
    this.#output[index] = messageItem(message.id, status, [outputText(text)]);
    this.#emit("response.output_item.done", { output_index: index, item: this.#output[index] });
    this.#message = null;
  }

  #call(delta: Json): void {
    // Calls are told apart by index; a backend that sends none starts each call with its id.
    const key = typeof delta.index === "number" && Number.isSafeInteger(delta.index)
      ? delta.index
      : typeof delta.id === "string" && delta.id !== ""
      ? `id:${delta.id}`
      : this.#lastCall;
    this.#lastCall = key;
    const fn = isObject(delta.function) ? delta.function : {};
    const call = this.#calls.get(key) ?? this.#openCall(key, delta.id, fn.name);
    if (call.name === "" && typeof fn.name === "string") call.name = fn.name;
    if (fn.arguments === undefined || fn.arguments === null || fn.arguments === "") return;
    const args = typeof fn.arguments === "string" ? fn.arguments : toolArguments(fn.arguments);
    call.args += args;
    const place = { item_id: call.id, output_index: call.index };
    this.#emit("response.function_call_arguments.delta", { ...place, delta: args });
  }

  #openCall(key: number | string, backendId: unknown, name: unknown): OpenCall {
    // Items are written one after the other: the text so far is complete.
    this.#closeMessage("completed");
    const index = this.#items++;
    const call = {
      index,
      id: itemId(this.#ctx, "fc", index),
      callId: this.#callId(backendId, index),
      name: typeof name === "string" ? name : "",
      args: "",
    };
    this.#calls.set(key, call);
    const item = functionCallItem(call.id, call, "in_progress");
    this.#emit("response.output_item.added", { output_index: index, item });
    return call;
  }

  /** The backend's choice is over: every open item is complete (or cut by `max_tokens`). */
  #finish(finishReason: unknown): void {
    const outcome = this.#outcome = outcomeOf(finishReason);
    if (this.#items === 0) this.#message = this.#openMessage();
    this.#closeMessage(outcome.status);
    for (const call of this.#calls.values()) {
      call.args ||= "{}";
      const place = { item_id: call.id, output_index: call.index };
      this.#emit("response.function_call_arguments.done", { ...place, arguments: call.args });
      this.#output[call.index] = functionCallItem(call.id, call, outcome.status);
      const item = this.#output[call.index];
      this.#emit("response.output_item.done", { output_index: call.index, item });
    }
    this.#calls.clear();
  }
}

/** Where a message's one text part is. */
function textPlace(message: OpenMessage): Json {
  return { item_id: message.id, output_index: message.index, content_index: 0 };
}
