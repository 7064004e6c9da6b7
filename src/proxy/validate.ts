/** Checks the fields the gateway itself relies on; everything else passes through untouched. */
import type { Endpoint } from "../../adapters/types.ts";
import { invalidRequest } from "../errors.ts";

/** The parts of a request body the gateway reads. */
export interface ProxyRequest {
  model: string;
  stream: boolean;
  /** The client asked for the usage chunk of a stream. */
  includeUsage: boolean;
  /** `max_tokens` or `max_completion_tokens`, when given. */
  maxTokens: number | null;
}

const REQUIRED: Record<Endpoint, string> = {
  chat: "messages",
  completions: "prompt",
  embeddings: "input",
};

/** Validates a parsed body for one endpoint; `fallbackModel` stands in for a missing `model`. */
export function validateBody(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  fallbackModel: string | null = null,
): ProxyRequest {
  const model = body.model ?? fallbackModel;
  if (model === undefined || model === null) {
    throw invalidRequest("Missing required field", "model");
  }
  if (typeof model !== "string" || model.trim() === "" || model.length > 256) {
    throw invalidRequest("Field must be a non-empty string of at most 256 characters", "model");
  }
  const required = REQUIRED[endpoint];
  if (body[required] === undefined || body[required] === null) {
    throw invalidRequest("Missing required field", required);
  }
  if (endpoint === "chat") checkMessages(body.messages);
  if (endpoint === "completions") checkTextInput(body.prompt, "prompt");
  if (endpoint === "embeddings") checkTextInput(body.input, "input");
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") {
    throw invalidRequest("Field must be a boolean", "stream");
  }
  const options = body.stream_options;
  if (
    options !== undefined && options !== null &&
    (typeof options !== "object" || Array.isArray(options))
  ) {
    throw invalidRequest("Field must be an object", "stream_options");
  }
  const stream = endpoint !== "embeddings" && body.stream === true;
  const includeUsage = stream &&
    (options as Record<string, unknown> | undefined)?.include_usage === true;
  return {
    model,
    stream,
    includeUsage,
    maxTokens: positiveInt(body, "max_completion_tokens") ?? positiveInt(body, "max_tokens"),
  };
}

function checkMessages(messages: unknown): void {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidRequest("Field must be a non-empty array of messages", "messages");
  }
  messages.forEach((message, index) => {
    if (!message || typeof message !== "object" || Array.isArray(message)) {
      throw invalidRequest("Each message must be an object", `messages[${index}]`);
    }
    const role = (message as Record<string, unknown>).role;
    if (typeof role !== "string" || role === "") {
      throw invalidRequest("Field must be a non-empty string", `messages[${index}].role`);
    }
  });
}

function checkTextInput(value: unknown, param: string): void {
  if (typeof value === "string") return;
  if (Array.isArray(value) && value.length > 0) return;
  throw invalidRequest("Field must be a string or a non-empty array", param);
}

function positiveInt(body: Record<string, unknown>, key: string): number | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw invalidRequest("Field must be a positive integer", key);
  }
  return value;
}
