/**
 * A Responses API request -> the Chat Completions body the backends speak. Every field is
 * untrusted: a malformed one is a 400 naming it, a feature that needs server-side state or a
 * built-in tool is a 400 `unsupported_parameter`, and nothing else is ever thrown.
 */
import { invalidRequest, unsupportedParameter } from "../errors.ts";
import { MAX_ANSWER_TOKENS, optionalBoolean, optionalInt, optionalString } from "./fields.ts";
import { estimateChatTokens } from "../usage/estimate.ts";
import { isObject } from "./responses_response.ts";

type Json = Record<string, unknown>;

/** What the gateway needs of a Responses request, and the chat body it becomes. */
export interface ParsedResponsesRequest {
  /** `model`, else the fallback model. */
  model: string;
  stream: boolean;
  maxOutputTokens: number | null;
  /** The Chat Completions body to send (model = the client's name; the gateway replaces it). */
  chat: Record<string, unknown>;
}

/** Fields that only make sense with responses stored on the server. */
const STATEFUL_FIELDS = ["previous_response_id", "conversation", "prompt"];
const REASONING_EFFORTS = new Set(["none", "minimal", "low", "medium", "high", "xhigh", "max"]);
const IMAGE_DETAILS = new Set(["auto", "low", "high"]);
const CHAT_ROLES: Record<string, string> = {
  user: "user",
  assistant: "assistant",
  system: "system",
  // Most self-hosted chat templates know no "developer" role; it means the same as "system".
  developer: "system",
};

/** Validates a Responses body and translates it; `fallbackModel` stands in for a missing model. */
export function parseResponsesRequest(
  body: Record<string, unknown>,
  fallbackModel: string | null,
): ParsedResponsesRequest {
  const model = modelName(body.model ?? fallbackModel);
  for (const field of STATEFUL_FIELDS) {
    if (body[field] !== undefined && body[field] !== null) {
      throw unsupportedParameter(
        `Field "${field}" needs stored responses, which this gateway does not keep`,
        field,
      );
    }
  }
  if (optionalBoolean(body, "background")) {
    throw unsupportedParameter(
      "Background responses need stored responses, which this gateway does not keep",
      "background",
    );
  }
  optionalBoolean(body, "store");
  const stream = optionalBoolean(body, "stream") ?? false;
  // Bounded as Chat Completions' max_tokens is: the quota reservation stays a sane number.
  const maxOutputTokens = optionalInt(body, "max_output_tokens", {
    min: 1,
    max: MAX_ANSWER_TOKENS,
  });
  const chat: Json = {
    model,
    messages: [...instructions(body.instructions), ...inputMessages(body.input)],
    stream,
  };
  // The stream translation needs the usage chunk to report usage in `response.completed`.
  if (stream) chat.stream_options = { include_usage: true };
  if (maxOutputTokens !== null) chat.max_tokens = maxOutputTokens;
  copyNumber(body, chat, "temperature", 2);
  copyNumber(body, chat, "top_p", 1);
  const user = optionalString(body, "user") ?? optionalString(body, "safety_identifier");
  if (user !== null) chat.user = user;
  const effort = reasoningEffort(body.reasoning);
  if (effort !== null) chat.reasoning_effort = effort;
  const parallel = optionalBoolean(body, "parallel_tool_calls");
  if (parallel !== null) chat.parallel_tool_calls = parallel;
  Object.assign(chat, toolFields(body.tools, body.tool_choice));
  const format = responseFormat(body.text);
  if (format !== null) chat.response_format = format;
  checkMetadata(body.metadata);
  return { model, stream, maxOutputTokens, chat };
}

/** Estimates the prompt tokens of a Responses body; tolerant of anything, never throws. */
export function estimateResponsesPromptTokens(body: Record<string, unknown>): number {
  const items = typeof body.input === "string"
    ? [{ content: body.input }]
    : Array.isArray(body.input)
    ? body.input
    : [];
  const messages: Json[] = items.map((item) => {
    const record = isObject(item) ? item : {};
    return {
      content: record.content ?? record.output,
      tool_calls: typeof record.arguments === "string"
        ? [record.name, record.arguments]
        : undefined,
    };
  });
  if (typeof body.instructions === "string") messages.unshift({ content: body.instructions });
  return estimateChatTokens(messages, body.tools ?? undefined);
}

function modelName(model: unknown): string {
  if (model === undefined || model === null) {
    throw invalidRequest("Missing required field", "model");
  }
  if (typeof model !== "string" || model.trim() === "" || model.length > 256) {
    throw invalidRequest("Field must be a non-empty string of at most 256 characters", "model");
  }
  return model;
}

function copyNumber(body: Json, chat: Json, key: string, max: number): void {
  const value = body[key];
  if (value === undefined || value === null) return;
  if (typeof value !== "number" || !(value >= 0 && value <= max)) {
    throw invalidRequest(`Field must be a number from 0 to ${max}`, key);
  }
  chat[key] = value;
}

function nonEmptyString(value: unknown, param: string): string {
  if (typeof value !== "string" || value === "") {
    throw invalidRequest("Field must be a non-empty string", param);
  }
  return value;
}

function instructions(value: unknown): Json[] {
  if (value === undefined || value === null) return [];
  if (typeof value !== "string") throw invalidRequest("Field must be a string", "instructions");
  return [{ role: "system", content: value }];
}

function inputMessages(input: unknown): Json[] {
  if (input === undefined || input === null) {
    throw invalidRequest("Missing required field", "input");
  }
  if (typeof input === "string") return [{ role: "user", content: input }];
  if (!Array.isArray(input) || input.length === 0) {
    throw invalidRequest("Field must be a string or a non-empty array of items", "input");
  }
  const messages: Json[] = [];
  input.forEach((item, index) => addItem(messages, item, `input[${index}]`));
  if (messages.length === 0) {
    throw invalidRequest("Field must contain at least one message or function call", "input");
  }
  return messages;
}

/** Appends the chat message(s) one input item becomes. */
function addItem(messages: Json[], item: unknown, param: string): void {
  if (!isObject(item)) throw invalidRequest("Each item must be an object", param);
  const type = item.type ?? (item.role !== undefined ? "message" : undefined);
  if (type === "message") return void messages.push(message(item, param));
  if (type === "function_call") return addFunctionCall(messages, item, param);
  if (type === "function_call_output") {
    return void messages.push({
      role: "tool",
      tool_call_id: nonEmptyString(item.call_id, `${param}.call_id`),
      content: toolOutput(item.output, `${param}.output`),
    });
  }
  // Earlier reasoning is the model's own scratch work; chat backends take no such input.
  if (type === "reasoning") return;
  if (type === "item_reference") {
    throw unsupportedParameter(
      'Input items of type "item_reference" need stored responses, which this gateway does not keep; send the items themselves (clients do when "store" is false)',
      param,
    );
  }
  if (typeof type !== "string") throw invalidRequest("Field must be a string", `${param}.type`);
  throw unsupportedParameter(`Input items of type "${type}" are not supported`, `${param}.type`);
}

function message(item: Json, param: string): Json {
  const role = typeof item.role === "string" && Object.hasOwn(CHAT_ROLES, item.role)
    ? CHAT_ROLES[item.role]
    : undefined;
  if (role === undefined) {
    throw invalidRequest(
      'Field must be "user", "assistant", "system" or "developer"',
      `${param}.role`,
    );
  }
  const content = item.content;
  if (typeof content === "string") return { role, content };
  if (!Array.isArray(content)) {
    throw invalidRequest("Field must be a string or an array of content parts", `${param}.content`);
  }
  const parts = content.map((part, index) => contentPart(part, `${param}.content[${index}]`));
  const textOnly = parts.every((part) => part.type === "text");
  if (!textOnly && role !== "user") {
    throw invalidRequest(
      `Messages with role "${item.role}" may contain only text`,
      `${param}.content`,
    );
  }
  // Assistant and system turns as one string: the form every chat template accepts.
  if (textOnly && (role !== "user" || parts.length <= 1)) {
    return { role, content: parts.map((part) => part.text).join("") };
  }
  return { role, content: parts };
}

/** One input content part -> a chat content part (`text` or `image_url`). */
function contentPart(part: unknown, param: string): Json {
  if (!isObject(part)) throw invalidRequest("Each content part must be an object", param);
  switch (part.type) {
    case "input_text":
    case "output_text":
      return { type: "text", text: textField(part.text, `${param}.text`) };
    case "refusal":
      return { type: "text", text: textField(part.refusal, `${param}.refusal`) };
    case "input_image":
      return imagePart(part, param);
    case "input_file":
      throw unsupportedParameter('Content parts of type "input_file" are not supported', param);
    default:
      if (typeof part.type !== "string") {
        throw invalidRequest("Field must be a string", `${param}.type`);
      }
      throw unsupportedParameter(
        `Content parts of type "${part.type}" are not supported`,
        `${param}.type`,
      );
  }
}

function textField(value: unknown, param: string): string {
  if (typeof value !== "string") throw invalidRequest("Field must be a string", param);
  return value;
}

function imagePart(part: Json, param: string): Json {
  if (part.file_id !== undefined && part.file_id !== null) {
    throw unsupportedParameter(
      "Images by file_id are not supported; send an image_url",
      `${param}.file_id`,
    );
  }
  const url = part.image_url;
  if (typeof url !== "string" || !/^(https?:\/\/|data:)/i.test(url)) {
    throw invalidRequest("Field must be an http(s) or data: URL", `${param}.image_url`);
  }
  const detail = typeof part.detail === "string" && IMAGE_DETAILS.has(part.detail)
    ? { detail: part.detail }
    : {};
  return { type: "image_url", image_url: { url, ...detail } };
}

/** A function call joins the assistant message right before it, as chat expects. */
function addFunctionCall(messages: Json[], item: Json, param: string): void {
  const call = {
    id: nonEmptyString(item.call_id, `${param}.call_id`),
    type: "function",
    function: {
      name: nonEmptyString(item.name, `${param}.name`),
      arguments: textField(item.arguments, `${param}.arguments`),
    },
  };
  const last = messages.at(-1);
  if (last?.role === "assistant") {
    last.tool_calls = [...(last.tool_calls as Json[] | undefined ?? []), call];
  } else {
    messages.push({ role: "assistant", content: null, tool_calls: [call] });
  }
}

function toolOutput(output: unknown, param: string): string {
  if (typeof output === "string") return output;
  if (!Array.isArray(output)) {
    throw invalidRequest("Field must be a string or an array of content parts", param);
  }
  return output.map((part, index) => {
    const text = contentPart(part, `${param}[${index}]`);
    if (text.type !== "text") {
      throw unsupportedParameter(
        "Function call outputs may contain only text",
        `${param}[${index}]`,
      );
    }
    return text.text;
  }).join("");
}

function reasoningEffort(reasoning: unknown): string | null {
  if (reasoning === undefined || reasoning === null) return null;
  if (!isObject(reasoning)) throw invalidRequest("Field must be an object", "reasoning");
  const effort = reasoning.effort;
  if (effort === undefined || effort === null) return null;
  if (typeof effort !== "string" || !REASONING_EFFORTS.has(effort)) {
    throw invalidRequest(
      `Field must be one of ${[...REASONING_EFFORTS].map((e) => `"${e}"`).join(", ")}`,
      "reasoning.effort",
    );
  }
  return effort;
}

/** `tools` (function tools only) and `tool_choice` -> their chat forms. */
function toolFields(tools: unknown, choice: unknown): Json {
  if (tools !== undefined && tools !== null && !Array.isArray(tools)) {
    throw invalidRequest("Field must be an array of tools", "tools");
  }
  let chatTools = (tools ?? []).map((tool, index) => functionTool(tool, `tools[${index}]`));
  const out: Json = {};
  if (choice === "auto" || choice === "none" || choice === "required") {
    out.tool_choice = choice;
  } else if (isObject(choice) && choice.type === "function") {
    const name = nonEmptyString(choice.name, "tool_choice.name");
    out.tool_choice = { type: "function", function: { name } };
  } else if (isObject(choice) && choice.type === "allowed_tools") {
    // Chat backends rarely know allowed_tools: offer only those tools instead.
    const allowed = allowedNames(choice);
    chatTools = chatTools.filter((tool) => allowed.has((tool.function as Json).name as string));
    out.tool_choice = choice.mode === "required" ? "required" : "auto";
  } else if (isObject(choice) && typeof choice.type === "string") {
    throw unsupportedParameter(
      `Tool choice of type "${choice.type}" is not supported`,
      "tool_choice",
    );
  } else if (choice !== undefined && choice !== null) {
    throw invalidRequest('Field must be "auto", "none", "required" or an object', "tool_choice");
  }
  if (chatTools.length > 0) out.tools = chatTools;
  return out;
}

function functionTool(tool: unknown, param: string): Json {
  if (!isObject(tool)) throw invalidRequest("Each tool must be an object", param);
  if (tool.type !== "function") {
    if (typeof tool.type !== "string") {
      throw invalidRequest("Field must be a string", `${param}.type`);
    }
    throw unsupportedParameter(
      `Tools of type "${tool.type}" are not supported; only "function" tools are`,
      `${param}.type`,
    );
  }
  const fn: Json = { name: nonEmptyString(tool.name, `${param}.name`) };
  if (tool.description !== undefined && tool.description !== null) {
    fn.description = textField(tool.description, `${param}.description`);
  }
  if (tool.parameters !== undefined && tool.parameters !== null) {
    if (!isObject(tool.parameters)) {
      throw invalidRequest("Field must be an object", `${param}.parameters`);
    }
    fn.parameters = tool.parameters;
  }
  const strict = optionalBoolean(tool, "strict", `${param}.strict`);
  if (strict !== null) fn.strict = strict;
  return { type: "function", function: fn };
}

function allowedNames(choice: Json): Set<string> {
  if (choice.mode !== "auto" && choice.mode !== "required") {
    throw invalidRequest('Field must be "auto" or "required"', "tool_choice.mode");
  }
  if (!Array.isArray(choice.tools)) {
    throw invalidRequest("Field must be an array", "tool_choice.tools");
  }
  return new Set(choice.tools.map((tool, index) => {
    const param = `tool_choice.tools[${index}]`;
    if (!isObject(tool) || tool.type !== "function") {
      throw unsupportedParameter('Only tools of type "function" can be allowed', param);
    }
    return nonEmptyString(tool.name, `${param}.name`);
  }));
}

/** `text.format` -> chat `response_format` (null for plain text). */
function responseFormat(text: unknown): Json | null {
  if (text === undefined || text === null) return null;
  if (!isObject(text)) throw invalidRequest("Field must be an object", "text");
  const format = text.format;
  if (format === undefined || format === null) return null;
  if (!isObject(format)) throw invalidRequest("Field must be an object", "text.format");
  if (format.type === "text") return null;
  if (format.type === "json_object") return { type: "json_object" };
  if (format.type !== "json_schema") {
    throw invalidRequest(
      'Field must be "text", "json_object" or "json_schema"',
      "text.format.type",
    );
  }
  const schema: Json = { name: nonEmptyString(format.name, "text.format.name") };
  if (!isObject(format.schema)) {
    throw invalidRequest("Field must be an object", "text.format.schema");
  }
  schema.schema = format.schema;
  if (format.description !== undefined && format.description !== null) {
    schema.description = textField(format.description, "text.format.description");
  }
  const strict = optionalBoolean(format, "strict", "text.format.strict");
  if (strict !== null) schema.strict = strict;
  return { type: "json_schema", json_schema: schema };
}

/** Metadata is echoed in the answer, so only OpenAI's shape is accepted: strings by name. */
function checkMetadata(metadata: unknown): void {
  if (metadata === undefined || metadata === null) return;
  if (
    !isObject(metadata) || Object.keys(metadata).length > 16 ||
    !Object.values(metadata).every((value) => typeof value === "string" && value.length <= 512)
  ) {
    throw invalidRequest("Field must be an object of at most 16 strings", "metadata");
  }
}
