/** Cheap token estimates for quota reservations and for answers whose usage never arrived. */

/** Roughly four characters per token for English text; images count a flat amount. */
const CHARS_PER_TOKEN = 4;
const IMAGE_TOKENS = 765;
const PER_MESSAGE_TOKENS = 4;

/** Estimates the prompt tokens of chat messages and tools (upper-leaning, not a tokenizer). */
export function estimateChatTokens(messages: unknown, tools: unknown): number {
  let tokens = 3;
  for (const message of Array.isArray(messages) ? messages : []) {
    if (!message || typeof message !== "object") continue;
    const record = message as Record<string, unknown>;
    tokens += PER_MESSAGE_TOKENS + estimateContentTokens(record.content);
    if (record.tool_calls !== undefined) tokens += jsonTokens(record.tool_calls);
  }
  if (tools !== undefined) tokens += jsonTokens(tools);
  return tokens;
}

/** Tokens of a text input: a string, token ids, content parts, or lists of those. */
export function estimateContentTokens(content: unknown): number {
  if (typeof content === "string") return textTokens(content);
  if (typeof content === "number") return 1;
  if (!Array.isArray(content)) return 0;
  let tokens = 0;
  for (const part of content) {
    if (typeof part === "string" || typeof part === "number") {
      tokens += estimateContentTokens(part);
    } else if (Array.isArray(part)) {
      tokens += part.length;
    } else if (part && typeof part === "object") {
      const record = part as Record<string, unknown>;
      tokens += typeof record.text === "string" ? textTokens(record.text) : IMAGE_TOKENS;
    }
  }
  return tokens;
}

/** Tokens of any JSON value, by the length of its text. */
export function jsonTokens(value: unknown): number {
  return textTokens(JSON.stringify(value) ?? "");
}

/** Tokens of a text. */
export function textTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}
