/** Chat Completions (`POST /v1/chat/completions`): the gateway's own format, sent as it came. */
import { invalidRequest } from "../errors.ts";
import { estimateChatTokens, jsonTokens, textTokens } from "../usage/estimate.ts";
import {
  MAX_CHOICES,
  maxTokensOf,
  modelOf,
  optionalArray,
  optionalBoolean,
  optionalInt,
  optionalObject,
  withoutRoutingFields,
} from "./fields.ts";
import { openAiCodec, type OpenAiRequest } from "./openai_events.ts";
import type { Codec } from "./types.ts";

type Json = Record<string, unknown>;

/** A validated chat request. */
export type ChatRequest = OpenAiRequest;

/** Parses the fields the gateway relies on; everything else passes through untouched. */
export function parseChat(
  body: Json,
  defaults: { fallbackModel: string | null; defaultMaxTokens: number },
): ChatRequest {
  const model = modelOf(body, defaults.fallbackModel);
  checkMessages(body.messages);
  optionalArray(body, "tools");
  const stream = optionalBoolean(body, "stream") ?? false;
  const options = optionalObject(body, "stream_options");
  const n = optionalInt(body, "n", { min: 1, max: MAX_CHOICES }) ?? 1;
  const answer = maxTokensOf(body) ?? defaults.defaultMaxTokens;
  const promptTokens = estimateChatTokens(body.messages, body.tools);
  return {
    model,
    stream,
    promptTokens,
    reserveTokens: promptTokens + n * answer,
    body: withoutRoutingFields(body),
    includeUsage: stream && options?.include_usage === true,
  };
}

function checkMessages(messages: unknown): void {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidRequest("Field must be a non-empty array of messages", "messages");
  }
  messages.forEach((message, index) => {
    const at = `messages[${index}]`;
    if (!message || typeof message !== "object" || Array.isArray(message)) {
      throw invalidRequest("Each message must be an object", at);
    }
    const record = message as Json;
    if (typeof record.role !== "string" || record.role === "") {
      throw invalidRequest("Field must be a non-empty string", `${at}.role`);
    }
    const content = record.content;
    if (Array.isArray(content)) {
      content.forEach((part, partIndex) => {
        if (!part || typeof part !== "object" || Array.isArray(part)) {
          throw invalidRequest(
            "Each content part must be an object",
            `${at}.content[${partIndex}]`,
          );
        }
      });
    } else if (content !== undefined && content !== null && typeof content !== "string") {
      throw invalidRequest("Field must be a string, an array of parts or null", `${at}.content`);
    }
    if (record.tool_calls !== undefined && record.tool_calls !== null) {
      checkToolCalls(record.tool_calls, `${at}.tool_calls`);
    }
  });
}

function checkToolCalls(calls: unknown, param: string): void {
  if (!Array.isArray(calls)) throw invalidRequest("Field must be an array of tool calls", param);
  calls.forEach((call, index) => {
    const at = `${param}[${index}]`;
    if (!call || typeof call !== "object" || Array.isArray(call)) {
      throw invalidRequest("Each tool call must be an object", at);
    }
    const fn = (call as Json).function;
    if (!fn || typeof fn !== "object" || Array.isArray(fn)) {
      throw invalidRequest("Field must be an object with a name", `${at}.function`);
    }
    if (typeof (fn as Json).name !== "string") {
      throw invalidRequest("Field must be a string", `${at}.function.name`);
    }
    const args = (fn as Json).arguments;
    if (
      args !== undefined && args !== null && typeof args !== "string" && typeof args !== "object"
    ) {
      throw invalidRequest("Field must be a JSON string", `${at}.function.arguments`);
    }
  });
}

/** Answer tokens of a chat completion whose backend reported none: its text, by length. */
function chatAnswerTokens(body: Json): number {
  let tokens = 0;
  for (const choice of Array.isArray(body.choices) ? body.choices : []) {
    const message = (choice as Json | null)?.message as Json | undefined;
    if (typeof message?.content === "string") tokens += textTokens(message.content);
    if (message?.tool_calls !== undefined) tokens += jsonTokens(message.tool_calls);
  }
  return tokens;
}

/** The chat codec. */
export const chatCodec: Codec<ChatRequest> = openAiCodec({
  name: "chat",
  parse: parseChat,
  answerTokens: chatAnswerTokens,
});
