/** OpenAI request bodies -> Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`). */
import { invalidRequest } from "../src/errors.ts";

type Json = Record<string, unknown>;

/** OpenAI sampling fields and the Ollama `options` entry each becomes. */
const OPTION_FIELDS: [string, string][] = [
  ["temperature", "temperature"],
  ["top_p", "top_p"],
  ["top_k", "top_k"],
  ["seed", "seed"],
  ["presence_penalty", "presence_penalty"],
  ["frequency_penalty", "frequency_penalty"],
  ["max_tokens", "num_predict"],
  ["max_completion_tokens", "num_predict"],
];

/** Sampling parameters go under `options`; `stop` is always a list there. */
export function toOllamaOptions(body: Json): Json | undefined {
  const options: Json = {};
  for (const [from, to] of OPTION_FIELDS) {
    if (typeof body[from] === "number") options[to] = body[from];
  }
  if (typeof body.stop === "string") options.stop = [body.stop];
  else if (Array.isArray(body.stop)) options.stop = body.stop.filter((s) => typeof s === "string");
  return Object.keys(options).length > 0 ? options : undefined;
}

/** `response_format` json_object -> `"json"`, json_schema -> the schema itself. */
export function toOllamaFormat(body: Json): unknown {
  const format = body.response_format as Json | undefined;
  if (!format || typeof format !== "object") return undefined;
  if (format.type === "json_object") return "json";
  if (format.type === "json_schema") {
    const schema = (format.json_schema as Json | undefined)?.schema;
    if (!schema || typeof schema !== "object") {
      throw invalidRequest(
        "json_schema needs a schema object",
        "response_format.json_schema.schema",
      );
    }
    return schema;
  }
  return undefined;
}

/** Removes undefined fields so the upstream body stays minimal. */
function compact(body: Json): Json {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
}

/** OpenAI chat body -> Ollama `/api/chat` body. */
export function toOllamaChat(body: Json, stream: boolean): Json {
  const messages = (body.messages as Json[]).map((message, index) =>
    toOllamaMessage(message, index)
  );
  // Ollama names the tool a result belongs to; OpenAI links it by the call's id.
  const toolNames = new Map<string, string>();
  for (const message of body.messages as Json[]) {
    for (const call of (message.tool_calls as Json[] | undefined) ?? []) {
      const name = (call.function as Json | undefined)?.name;
      if (typeof call.id === "string" && typeof name === "string") toolNames.set(call.id, name);
    }
  }
  (body.messages as Json[]).forEach((message, index) => {
    const name = typeof message.tool_call_id === "string"
      ? toolNames.get(message.tool_call_id)
      : undefined;
    if (message.role === "tool" && name) messages[index].tool_name = name;
  });
  return compact({
    model: body.model,
    messages,
    tools: Array.isArray(body.tools) ? body.tools : undefined,
    format: toOllamaFormat(body),
    options: toOllamaOptions(body),
    stream,
  });
}

function toOllamaMessage(message: Json, index: number): Json {
  const out: Json = { role: message.role };
  const content = message.content;
  if (typeof content === "string") {
    out.content = content;
  } else if (Array.isArray(content)) {
    const texts: string[] = [];
    const images: string[] = [];
    content.forEach((part: Json, partIndex: number) => {
      if (part?.type === "text" && typeof part.text === "string") texts.push(part.text);
      if (part?.type === "image_url") {
        images.push(imageData(part, `messages[${index}].content[${partIndex}].image_url`));
      }
    });
    out.content = texts.join("\n");
    if (images.length > 0) out.images = images;
  } else {
    out.content = "";
  }
  if (Array.isArray(message.tool_calls)) {
    out.tool_calls = message.tool_calls.map((call: Json) => {
      const fn = (call.function ?? {}) as Json;
      return { function: { name: fn.name, arguments: parseArguments(fn.arguments) } };
    });
  }
  return out;
}

/** Ollama takes base64 images only: a `data:` URL is unpacked, any other URL is refused. */
function imageData(part: Json, param: string): string {
  const image = part.image_url as Json | string | undefined;
  const url = typeof image === "string" ? image : image?.url;
  const match = typeof url === "string" ? /^data:image\/[\w.+-]+;base64,(.+)$/s.exec(url) : null;
  if (!match) {
    throw invalidRequest("Ollama backends accept images only as base64 data: URLs", param);
  }
  return match[1];
}

/** OpenAI sends tool arguments as a JSON string; Ollama wants the object. */
function parseArguments(value: unknown): unknown {
  if (typeof value !== "string") return value ?? {};
  try {
    return JSON.parse(value);
  } catch {
    return {};
  }
}

/** OpenAI legacy completions body -> Ollama `/api/generate` body. */
export function toOllamaGenerate(body: Json, stream: boolean): Json {
  let prompt = body.prompt;
  if (Array.isArray(prompt)) {
    if (prompt.length !== 1 || typeof prompt[0] !== "string") {
      throw invalidRequest("Ollama backends take one prompt string per request", "prompt");
    }
    prompt = prompt[0];
  }
  if (typeof prompt !== "string") throw invalidRequest("Field must be a string", "prompt");
  return compact({
    model: body.model,
    prompt,
    suffix: typeof body.suffix === "string" ? body.suffix : undefined,
    format: toOllamaFormat(body),
    options: toOllamaOptions(body),
    stream,
  });
}

/** OpenAI embeddings body -> Ollama `/api/embed` body. */
export function toOllamaEmbed(body: Json): Json {
  const input = body.input;
  const strings = typeof input === "string" ||
    (Array.isArray(input) && input.every((item) => typeof item === "string"));
  if (!strings) throw invalidRequest("Ollama backends embed strings, not token arrays", "input");
  return compact({
    model: body.model,
    input,
    dimensions: typeof body.dimensions === "number" ? body.dimensions : undefined,
  });
}
