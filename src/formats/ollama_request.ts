/**
 * Ollama client requests (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`) ->
 * validated OpenAI bodies (chat completions or embeddings) that any backend can serve.
 */
import { type GatewayError, invalidRequest, unsupportedParameter } from "../errors.ts";
import { estimateChatTokens, estimateContentTokens } from "../usage/estimate.ts";
import {
  MAX_ANSWER_TOKENS,
  MAX_DIMENSIONS,
  modelOf,
  optionalBoolean,
  optionalInt,
  optionalObject,
  optionalString,
} from "./fields.ts";
import type { ParseDefaults, ParsedRequest } from "./types.ts";
import { type Json, toChatMessages, toImageParts, userContent } from "./ollama_messages.ts";

/** The Ollama endpoints that reach a model. */
export type OllamaKind = "chat" | "generate" | "embed" | "embeddings";

/**
 * A validated Ollama request and the OpenAI body it becomes. `model` is the body's, else the
 * fallback; `stream` is as sent, chat and generate streaming when it is absent (as Ollama does),
 * embeddings never; `promptTokens` and `reserveTokens` are estimated from the OpenAI body.
 */
export interface ParsedOllamaRequest extends ParsedRequest {
  kind: OllamaKind;
  /** `options.num_predict` when above 0 (0, -1 and -2 mean no limit in Ollama). */
  maxTokens: number | null;
  /** Which OpenAI endpoint `openai` is a body for. */
  endpoint: "chat" | "embeddings";
  /** The OpenAI body to send: chat completions for chat and generate, embeddings for embed. */
  openai: Json;
  /**
   * A 400 for a valid Ollama feature with no OpenAI equivalent (`raw`, `template`, `suffix`,
   * `context`, an empty prompt that only loads the model, images outside user messages), or null.
   * An Ollama backend can serve the request natively; any other backend must refuse it.
   */
  nativeOnly: GatewayError | null;
  /** The client sent `think: false`: answers leave out the model's reasoning. */
  hideThinking: boolean;
}

/** OpenAI allows this many inputs per embeddings request. */
export const MAX_EMBED_INPUTS = 2048;

/** `/api/chat` -> chat completions. */
export function parseOllamaChat(body: Json, defaults: ParseDefaults): ParsedOllamaRequest {
  const model = modelOf(body, defaults.fallbackModel);
  const messages = body.messages;
  if (!Array.isArray(messages)) {
    throw invalidRequest("Field must be an array of messages", "messages");
  }
  const converted = toChatMessages(messages);
  let nativeOnly = converted.nativeOnly;
  if (messages.length === 0) {
    nativeOnly ??= unsupportedParameter(
      "An empty message list only loads the model, which works with Ollama backends only",
      "messages",
    );
  }
  return chatRequest("chat", body, defaults, {
    model,
    messages: converted.messages,
    tools: toTools(body.tools),
    nativeOnly,
  });
}

/** `/api/generate` -> chat completions: `system` and `prompt` (with `images`) as two messages. */
export function parseOllamaGenerate(body: Json, defaults: ParseDefaults): ParsedOllamaRequest {
  const model = modelOf(body, defaults.fallbackModel);
  const prompt = optionalString(body, "prompt") ?? "";
  const system = optionalString(body, "system") ?? "";
  const suffix = optionalString(body, "suffix") ?? "";
  const template = optionalString(body, "template") ?? "";
  const raw = optionalBoolean(body, "raw") ?? false;
  const context = body.context;
  if (context !== undefined && context !== null && !isTokenList(context)) {
    throw invalidRequest("Field must be an array of token ids", "context");
  }
  const images = toImageParts(body.images, "images");
  const user = { role: "user", content: userContent(prompt, images) };
  // Ollama-only features, in the order a refusal names them.
  const nativeOnly: [boolean, string, string][] = [
    [raw, "Raw prompts work with Ollama backends only", "raw"],
    [template !== "", "Prompt templates work with Ollama backends only", "template"],
    [suffix !== "", "Fill-in-the-middle works with Ollama backends only", "suffix"],
    [
      Array.isArray(context) && context.length > 0,
      "Generation context works with Ollama backends only",
      "context",
    ],
    [
      prompt === "" && images.length === 0,
      "An empty prompt only loads the model, which works with Ollama backends only",
      "prompt",
    ],
  ];
  const found = nativeOnly.find(([applies]) => applies);
  return chatRequest("generate", body, defaults, {
    model,
    messages: system ? [{ role: "system", content: system }, user] : [user],
    tools: undefined,
    nativeOnly: found ? unsupportedParameter(found[1], found[2]) : null,
  });
}

/** `/api/embed` -> embeddings; `truncate` and `options` are checked and then left to the backend. */
export function parseOllamaEmbed(body: Json, defaults: ParseDefaults): ParsedOllamaRequest {
  const model = modelOf(body, defaults.fallbackModel);
  const input = body.input;
  const valid = typeof input === "string" ||
    (Array.isArray(input) && input.length > 0 && input.every((item) => typeof item === "string"));
  if (!valid) {
    throw invalidRequest("Field must be a string or a non-empty array of strings", "input");
  }
  if (Array.isArray(input) && input.length > MAX_EMBED_INPUTS) {
    throw invalidRequest(`Field must hold at most ${MAX_EMBED_INPUTS} inputs`, "input");
  }
  optionalBoolean(body, "truncate");
  optionalObject(body, "options");
  const openai: Json = { model, input, encoding_format: "float" };
  // The bound of /v1/embeddings' `dimensions`.
  const dimensions = optionalInt(body, "dimensions", { min: 1, max: MAX_DIMENSIONS });
  if (dimensions !== null) openai.dimensions = dimensions;
  return embeddingsRequest("embed", openai);
}

/** Legacy `/api/embeddings` (one `prompt`, one vector) -> embeddings. */
export function parseOllamaLegacyEmbeddings(
  body: Json,
  defaults: ParseDefaults,
): ParsedOllamaRequest {
  const model = modelOf(body, defaults.fallbackModel);
  const prompt = body.prompt;
  if (typeof prompt !== "string" || prompt === "") {
    throw invalidRequest("Field must be a non-empty string", "prompt");
  }
  optionalObject(body, "options");
  return embeddingsRequest("embeddings", { model, input: prompt, encoding_format: "float" });
}

/** The model `/api/show` asks about: `model`, or `name` as older clients send it. */
export function parseOllamaShow(body: Json): string {
  return modelOf({ model: body.model ?? body.name }, null);
}

/** Throws the request's {@linkcode ParsedOllamaRequest.nativeOnly} error, if any. */
export function assertTranslatable(request: ParsedOllamaRequest): void {
  if (request.nativeOnly) throw request.nativeOnly;
}

interface ChatParts {
  model: string;
  messages: Json[];
  tools: Json[] | undefined;
  nativeOnly: GatewayError | null;
}

function chatRequest(
  kind: "chat" | "generate",
  body: Json,
  defaults: ParseDefaults,
  parts: ChatParts,
): ParsedOllamaRequest {
  const model = parts.model;
  const stream = optionalBoolean(body, "stream") ?? true;
  const options = optionalObject(body, "options") ?? {};
  const sampling = toSampling(options);
  const think = toThink(body.think);
  const openai: Json = {
    model,
    messages: parts.messages,
    ...sampling,
    stream,
  };
  if (stream) openai.stream_options = { include_usage: true };
  if (parts.tools) openai.tools = parts.tools;
  const format = toResponseFormat(body.format);
  if (format) openai.response_format = format;
  if (think.effort) openai.reasoning_effort = think.effort;
  const maxTokens = typeof sampling.max_tokens === "number" ? sampling.max_tokens : null;
  const promptTokens = estimateChatTokens(parts.messages, parts.tools);
  return {
    kind,
    model,
    stream,
    promptTokens,
    reserveTokens: promptTokens + (maxTokens ?? defaults.defaultMaxTokens),
    maxTokens,
    endpoint: "chat",
    openai,
    nativeOnly: parts.nativeOnly,
    hideThinking: think.hide,
  };
}

/** Embeddings reserve their prompt estimate only: answers cost nothing. */
function embeddingsRequest(kind: "embed" | "embeddings", openai: Json): ParsedOllamaRequest {
  const promptTokens = estimateContentTokens(openai.input);
  return {
    kind,
    model: openai.model as string,
    stream: false,
    promptTokens,
    reserveTokens: promptTokens,
    maxTokens: null,
    endpoint: "embeddings",
    openai,
    nativeOnly: null,
    hideThinking: false,
  };
}

const penalty = (v: number) => v >= -2 && v <= 2;

/** Ollama options read as OpenAI sampling fields: option, field, check, the rule a 400 states. */
const SAMPLING: [string, string, (value: number) => boolean, string][] = [
  ["temperature", "temperature", (v) => v >= 0, "a number of at least 0"],
  ["top_p", "top_p", (v) => v >= 0 && v <= 1, "a number from 0 to 1"],
  // Not in OpenAI's API; vLLM and llama.cpp accept it as an extra field.
  ["top_k", "top_k", (v) => isWhole(v) && v >= 0, "an integer of at least 0"],
  ["seed", "seed", isWhole, "an integer"],
  ["presence_penalty", "presence_penalty", penalty, "a number from -2 to 2"],
  ["frequency_penalty", "frequency_penalty", penalty, "a number from -2 to 2"],
  [
    "num_predict",
    "max_tokens",
    (v) => isWhole(v) && v >= -2 && v <= MAX_ANSWER_TOKENS,
    `a whole number from -2 to ${MAX_ANSWER_TOKENS}`,
  ],
];

/** Ollama `options` -> OpenAI sampling fields. Load-time options (num_ctx, num_gpu...) are ignored. */
function toSampling(options: Json): Json {
  const out: Json = {};
  for (const [name, field, check, rule] of SAMPLING) {
    const value = options[name];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || !check(value)) {
      throw invalidRequest(`Field must be ${rule}`, `options.${name}`);
    }
    // num_predict 0, -1 (no limit) and -2 (fill the context) leave the backend's own limit.
    if (field !== "max_tokens" || value > 0) out[field] = value;
  }
  const stop = options.stop;
  if (typeof stop === "string") {
    out.stop = [stop];
  } else if (Array.isArray(stop)) {
    if (!stop.every((item) => typeof item === "string")) {
      throw invalidRequest("Field must be a string or an array of strings", "options.stop");
    }
    if (stop.length > 0) out.stop = stop;
  } else if (stop !== undefined && stop !== null) {
    throw invalidRequest("Field must be a string or an array of strings", "options.stop");
  }
  return out;
}

/**
 * `think`: a level becomes OpenAI's `reasoning_effort` ("max" is OpenAI's "high"); `true` leaves
 * the model's default; `false` has no OpenAI equivalent, so the answer's reasoning is dropped.
 */
function toThink(value: unknown): { effort: string | null; hide: boolean } {
  if (value === undefined || value === null || value === true) return { effort: null, hide: false };
  if (value === false) return { effort: null, hide: true };
  if (value === "low" || value === "medium" || value === "high") {
    return { effort: value, hide: false };
  }
  if (value === "max") return { effort: "high", hide: false };
  throw invalidRequest('Field must be a boolean or "low", "medium", "high" or "max"', "think");
}

/** `format`: "json" -> json_object; a JSON schema -> json_schema named after its title. */
function toResponseFormat(format: unknown): Json | null {
  if (format === undefined || format === null || format === "") return null;
  if (format === "json") return { type: "json_object" };
  if (typeof format === "object" && !Array.isArray(format)) {
    const title = (format as Json).title;
    const name = typeof title === "string" && /^[\w-]{1,64}$/.test(title) ? title : "response";
    return { type: "json_schema", json_schema: { name, schema: format } };
  }
  throw invalidRequest('Field must be "json" or a JSON schema object', "format");
}

/** Ollama tools are OpenAI's function tools; only the fields OpenAI defines are sent. */
function toTools(tools: unknown): Json[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw invalidRequest("Field must be an array of tools", "tools");
  if (tools.length === 0) return undefined;
  return tools.map((tool, index) => {
    const param = `tools[${index}]`;
    if (!tool || typeof tool !== "object" || Array.isArray(tool)) {
      throw invalidRequest("Each tool must be an object", param);
    }
    if (tool.type !== undefined && tool.type !== "function") {
      throw invalidRequest('Only tools of type "function" are supported', `${param}.type`);
    }
    const fn = tool.function;
    if (!fn || typeof fn !== "object" || Array.isArray(fn)) {
      throw invalidRequest("Field must be an object", `${param}.function`);
    }
    if (typeof fn.name !== "string" || fn.name === "") {
      throw invalidRequest("Field must be a non-empty string", `${param}.function.name`);
    }
    const out: Json = { name: fn.name };
    const description = optionalString(fn, "description", `${param}.function.description`);
    if (description !== null) out.description = description;
    const parameters = optionalObject(fn, "parameters", `${param}.function.parameters`);
    if (parameters !== null) out.parameters = parameters;
    return { type: "function", function: out };
  });
}

function isTokenList(value: unknown): boolean {
  return Array.isArray(value) && value.every(isWhole);
}

function isWhole(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}
