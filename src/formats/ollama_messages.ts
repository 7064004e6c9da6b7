/**
 * Ollama chat messages -> OpenAI chat messages: base64 images become `data:` URL parts, tool calls
 * get JSON-string arguments and ids, and tool results are linked to their call by id.
 */
import { type GatewayError, invalidRequest, unsupportedParameter } from "../errors.ts";
import { optionalString } from "./fields.ts";

/** A JSON object. */
export type Json = Record<string, unknown>;

/** OpenAI messages, and the first valid Ollama feature they could not express (or null). */
export interface ConvertedMessages {
  messages: Json[];
  nativeOnly: GatewayError | null;
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);

/** A tool call of the last assistant message that asked for some. */
interface OpenCall {
  id: string;
  name: string;
  answered: boolean;
}

/** A queue of open calls that skips answered ones: each call is passed over once. */
class CallQueue {
  #calls: OpenCall[] = [];
  #head = 0;

  add(call: OpenCall): void {
    this.#calls.push(call);
  }

  /** The first call not answered yet. */
  first(): OpenCall | undefined {
    while (this.#head < this.#calls.length && this.#calls[this.#head].answered) this.#head++;
    return this.#calls[this.#head];
  }
}

/**
 * The calls tool messages may answer, found by id, by name or in order in constant time, so a
 * long conversation costs linear time however its results refer to its calls.
 */
class OpenCalls {
  #byId = new Map<string, OpenCall>();
  #byName = new Map<string, CallQueue>();
  #all = new CallQueue();

  constructor(calls: Json[] = []) {
    for (const call of calls) {
      const open = {
        id: call.id as string,
        name: (call.function as Json).name as string,
        answered: false,
      };
      if (!this.#byId.has(open.id)) this.#byId.set(open.id, open);
      let named = this.#byName.get(open.name);
      if (!named) this.#byName.set(open.name, named = new CallQueue());
      named.add(open);
      this.#all.add(open);
    }
  }

  /**
   * The id of the call a tool message answers: its own `tool_call_id`, else the first open call
   * with its `tool_name`, else the first open call when it names none; null when none is left.
   */
  take(id: string | null, name: string | null): string | null {
    if (id) {
      const call = this.#byId.get(id);
      if (call) call.answered = true;
      return id;
    }
    const call = name ? this.#byName.get(name)?.first() : this.#all.first();
    if (!call) return null;
    call.answered = true;
    return call.id;
  }
}

/** Converts and validates `messages`; a 400 names the offending field. */
export function toChatMessages(messages: unknown[]): ConvertedMessages {
  let nativeOnly: GatewayError | null = null;
  let open = new OpenCalls();
  const out = messages.map((message, index) => {
    const param = `messages[${index}]`;
    if (!message || typeof message !== "object" || Array.isArray(message)) {
      throw invalidRequest("Each message must be an object", param);
    }
    const m = message as Json;
    const role = typeof m.role === "string" ? m.role.toLowerCase() : null;
    if (role === null || !ROLES.has(role)) {
      throw invalidRequest(
        'Field must be "system", "user", "assistant" or "tool"',
        `${param}.role`,
      );
    }
    const content = optionalString(m, "content", `${param}.content`) ?? "";
    const images = toImageParts(m.images, `${param}.images`);
    if (images.length > 0 && role !== "user") {
      nativeOnly ??= unsupportedParameter(
        "Images outside user messages work with Ollama backends only",
        `${param}.images`,
      );
    }
    const calls = toToolCalls(m.tool_calls, index);
    if (calls.length > 0 && role !== "assistant") {
      throw invalidRequest("Only assistant messages carry tool calls", `${param}.tool_calls`);
    }
    if (role === "assistant" && calls.length > 0) {
      open = new OpenCalls(calls);
      return { role, content, tool_calls: calls };
    }
    if (role === "tool") {
      const id = open.take(
        optionalString(m, "tool_call_id", `${param}.tool_call_id`),
        optionalString(m, "tool_name", `${param}.tool_name`),
      );
      if (id === null) {
        nativeOnly ??= unsupportedParameter(
          "A tool result without a matching tool call before it works with Ollama backends only",
          `${param}.tool_name`,
        );
      }
      return { role, tool_call_id: id ?? "", content };
    }
    return { role, content: role === "user" ? userContent(content, images) : content };
  });
  return { messages: out, nativeOnly };
}

/** Ollama tool calls (object arguments) -> OpenAI's (ids, JSON-string arguments). */
function toToolCalls(value: unknown, messageIndex: number): Json[] {
  const param = `messages[${messageIndex}].tool_calls`;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidRequest("Field must be an array of tool calls", param);
  return value.map((call, index) => {
    const at = `${param}[${index}]`;
    if (!call || typeof call !== "object" || Array.isArray(call)) {
      throw invalidRequest("Each tool call must be an object", at);
    }
    const fn = call.function;
    if (!fn || typeof fn !== "object" || Array.isArray(fn)) {
      throw invalidRequest("Field must be an object", `${at}.function`);
    }
    if (typeof fn.name !== "string" || fn.name === "") {
      throw invalidRequest("Field must be a non-empty string", `${at}.function.name`);
    }
    const id = typeof call.id === "string" && call.id !== ""
      ? call.id
      : `call_${messageIndex}_${index}`;
    return {
      id,
      type: "function",
      function: {
        name: fn.name,
        arguments: argumentsText(fn.arguments, `${at}.function.arguments`),
      },
    };
  });
}

/** Ollama sends arguments as an object; a JSON string of an object is accepted too. */
function argumentsText(value: unknown, param: string): string {
  if (value === undefined || value === null) return "{}";
  if (typeof value === "string") {
    try {
      const parsed = JSON.parse(value);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return value;
    } catch {
      // Reported below.
    }
  } else if (typeof value === "object" && !Array.isArray(value)) {
    return JSON.stringify(value);
  }
  throw invalidRequest("Field must be an object", param);
}

/** A user message's content: its text alone, or text and image parts. */
export function userContent(text: string, images: Json[]): string | Json[] {
  if (images.length === 0) return text;
  return [...(text === "" ? [] : [{ type: "text", text }]), ...images];
}

/** Base64 images -> `image_url` parts with a `data:` URL of the sniffed type. */
export function toImageParts(value: unknown, param: string): Json[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidRequest("Field must be an array of base64 images", param);
  return value.map((image, index) => {
    if (typeof image !== "string" || !isBase64(image)) {
      throw invalidRequest("Each image must be a base64-encoded file", `${param}[${index}]`);
    }
    return {
      type: "image_url",
      image_url: { url: `data:${sniffImageType(image)};base64,${image}` },
    };
  });
}

/** Standard base64 with padding, as Ollama decodes it. */
function isBase64(text: string): boolean {
  return text.length > 0 && text.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text);
}

/** The image type from its first bytes; PNG when they match no known format. */
export function sniffImageType(base64: string): string {
  let head: string;
  try {
    head = atob(base64.slice(0, 16));
  } catch {
    return "image/png";
  }
  if (head.startsWith("\xff\xd8\xff")) return "image/jpeg";
  if (head.startsWith("GIF87a") || head.startsWith("GIF89a")) return "image/gif";
  if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") return "image/webp";
  if (head.startsWith("BM")) return "image/bmp";
  return "image/png";
}
