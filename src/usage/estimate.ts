/** Cheap token estimates for quota reservations and for streams cut before usage arrived. */
import type { Endpoint } from "../../adapters/types.ts";

/** Roughly four characters per token for English text; images count a flat amount. */
const CHARS_PER_TOKEN = 4;
const IMAGE_TOKENS = 765;
const PER_MESSAGE_TOKENS = 4;

/** Estimates the prompt tokens of a request body (an upper-leaning guess, not a tokenizer). */
export function estimatePromptTokens(endpoint: Endpoint, body: Record<string, unknown>): number {
  if (endpoint === "chat") {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    let tokens = 3;
    for (const message of messages) {
      tokens += PER_MESSAGE_TOKENS + countContent((message as Record<string, unknown>)?.content);
      const calls = (message as Record<string, unknown>)?.tool_calls;
      if (calls !== undefined) tokens += textTokens(JSON.stringify(calls));
    }
    if (body.tools !== undefined) tokens += textTokens(JSON.stringify(body.tools));
    return tokens;
  }
  return countContent(endpoint === "completions" ? body.prompt : body.input);
}

function countContent(content: unknown): number {
  if (typeof content === "string") return textTokens(content);
  if (typeof content === "number") return 1;
  if (!Array.isArray(content)) return 0;
  let tokens = 0;
  for (const part of content) {
    if (typeof part === "string" || typeof part === "number") {
      tokens += countContent(part);
    } else if (Array.isArray(part)) {
      tokens += part.length;
    } else if (part && typeof part === "object") {
      const record = part as Record<string, unknown>;
      tokens += typeof record.text === "string" ? textTokens(record.text) : IMAGE_TOKENS;
    }
  }
  return tokens;
}

function textTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}
