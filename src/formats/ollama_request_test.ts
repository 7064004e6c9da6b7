import { assert, assertEquals } from "../../tests/assert.ts";
import { GatewayError } from "../errors.ts";
import type { ParseDefaults } from "./types.ts";
import {
  assertTranslatable,
  MAX_EMBED_INPUTS,
  type ParsedOllamaRequest,
  parseOllamaChat,
  parseOllamaEmbed,
  parseOllamaGenerate,
  parseOllamaLegacyEmbeddings,
  parseOllamaShow,
} from "./ollama_request.ts";

type Json = Record<string, unknown>;
type Parser = (body: Json, defaults: ParseDefaults) => ParsedOllamaRequest;

/** No fallback model; 500 answer tokens reserved when a request sets no limit. */
const D: ParseDefaults = { fallbackModel: null, defaultMaxTokens: 500 };

const user = { role: "user", content: "Hi" };
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw new Error(`expected a GatewayError, got ${err}`);
  }
  throw new Error("expected a 400, got none");
}

Deno.test("parseOllamaChat() maps options, format and think to OpenAI fields", () => {
  const parsed = parseOllamaChat({
    model: "qwen3:8b",
    messages: [{ role: "system", content: "Be brief" }, user],
    options: {
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      seed: 7,
      num_predict: 64,
      stop: ["\n\n", "User:"],
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      num_ctx: 8192,
      mirostat: 2,
    },
    format: "json",
    think: "medium",
    keep_alive: "5m",
  }, D);
  assertEquals(parsed.model, "qwen3:8b");
  assertEquals(parsed.stream, true);
  assertEquals(parsed.maxTokens, 64);
  assertEquals(parsed.endpoint, "chat");
  assertEquals(parsed.nativeOnly, null);
  assertEquals(parsed.hideThinking, false);
  assertEquals(parsed.openai, {
    model: "qwen3:8b",
    messages: [{ role: "system", content: "Be brief" }, user],
    temperature: 0.2,
    top_p: 0.9,
    top_k: 40,
    seed: 7,
    presence_penalty: 0.5,
    frequency_penalty: -0.5,
    max_tokens: 64,
    stop: ["\n\n", "User:"],
    stream: true,
    stream_options: { include_usage: true },
    response_format: { type: "json_object" },
    reasoning_effort: "medium",
  });
});

Deno.test("parseOllamaChat() streams unless told not to, and takes the fallback model", () => {
  assertEquals(
    parseOllamaChat({ messages: [user] }, { ...D, fallbackModel: "default-model" }).model,
    "default-model",
  );
  assertEquals(parseOllamaChat({ model: "m", messages: [user] }, D).stream, true);
  const plain = parseOllamaChat({ model: "m", messages: [user], stream: false }, D);
  assertEquals(plain.stream, false);
  assertEquals(plain.openai.stream, false);
  assertEquals(plain.openai.stream_options, undefined);
});

Deno.test("parseOllamaChat() reads num_predict of 0, -1 and -2 as no limit", () => {
  for (const num_predict of [0, -1, -2]) {
    const parsed = parseOllamaChat(
      { model: "m", messages: [user], options: { num_predict } },
      D,
    );
    assertEquals(parsed.maxTokens, null);
    assertEquals(parsed.openai.max_tokens, undefined);
  }
});

Deno.test("parseOllamaChat() turns a schema format into json_schema named after its title", () => {
  const schema = { title: "Person", type: "object", properties: { age: { type: "integer" } } };
  const named = parseOllamaChat({ model: "m", messages: [user], format: schema }, D);
  assertEquals(named.openai.response_format, {
    type: "json_schema",
    json_schema: { name: "Person", schema },
  });
  const odd = { title: "a title with spaces", type: "object" };
  const fallback = parseOllamaChat({ model: "m", messages: [user], format: odd }, D);
  assertEquals((fallback.openai.response_format as Json).json_schema, {
    name: "response",
    schema: odd,
  });
});

Deno.test("parseOllamaChat() maps each think value", () => {
  const cases: [unknown, string | undefined, boolean][] = [
    [true, undefined, false],
    [false, undefined, true],
    ["low", "low", false],
    ["high", "high", false],
    ["max", "high", false],
    [null, undefined, false],
  ];
  for (const [think, effort, hide] of cases) {
    const parsed = parseOllamaChat({ model: "m", messages: [user], think }, D);
    assertEquals(parsed.openai.reasoning_effort, effort, `think ${think}`);
    assertEquals(parsed.hideThinking, hide, `think ${think}`);
  }
});

Deno.test("parseOllamaChat() sends tools with only the fields OpenAI defines", () => {
  const parsed = parseOllamaChat({
    model: "m",
    messages: [user],
    tools: [{
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather of a city",
        parameters: { type: "object", properties: { city: { type: "string" } } },
        strict_mode_of_some_client: true,
      },
      extra: 1,
    }, { function: { name: "now" } }],
  }, D);
  assertEquals(parsed.openai.tools, [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather of a city",
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    },
    { type: "function", function: { name: "now" } },
  ]);
  const none = parseOllamaChat({ model: "m", messages: [user], tools: [] }, D);
  assertEquals(none.openai.tools, undefined);
});

Deno.test("parseOllamaChat() marks an empty message list as a model load for Ollama backends only", () => {
  const parsed = parseOllamaChat({ model: "m", messages: [] }, D);
  assertEquals(parsed.nativeOnly?.param, "messages");
  assertEquals(parsed.nativeOnly?.code, "unsupported_parameter");
  const err = refusal(() => assertTranslatable(parsed));
  assertEquals(err.status, 400);
});

Deno.test("parseOllamaGenerate() sends system and prompt with images as chat messages", () => {
  const parsed = parseOllamaGenerate({
    model: "llava",
    prompt: "What is this?",
    system: "Answer in French",
    images: [PNG],
    options: { num_predict: 10 },
    stream: false,
  }, D);
  assertEquals(parsed.kind, "generate");
  assertEquals(parsed.endpoint, "chat");
  assertEquals(parsed.maxTokens, 10);
  assertEquals(parsed.nativeOnly, null);
  assertEquals(parsed.openai.messages, [
    { role: "system", content: "Answer in French" },
    {
      role: "user",
      content: [
        { type: "text", text: "What is this?" },
        { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
      ],
    },
  ]);
  assertEquals(parsed.openai.stream, false);
});

Deno.test("parseOllamaGenerate() leaves Ollama-only features to Ollama backends, naming each", () => {
  const cases: [Json, string][] = [
    [{ prompt: "x", raw: true }, "raw"],
    [{ prompt: "x", template: "{{ .Prompt }}" }, "template"],
    [{ prompt: "x", suffix: "return result" }, "suffix"],
    [{ prompt: "x", context: [1, 2, 3] }, "context"],
    [{ prompt: "" }, "prompt"],
    [{}, "prompt"],
  ];
  for (const [body, param] of cases) {
    const parsed = parseOllamaGenerate({ model: "m", ...body }, D);
    assertEquals(parsed.nativeOnly?.param, param, JSON.stringify(body));
    assertEquals(parsed.nativeOnly?.status, 400);
  }
  const fine = parseOllamaGenerate({
    model: "m",
    prompt: "x",
    raw: false,
    template: "",
    suffix: "",
    context: [],
  }, D);
  assertEquals(fine.nativeOnly, null);
  assertTranslatable(fine);
});

Deno.test("parseOllamaEmbed() and parseOllamaLegacyEmbeddings() build embeddings bodies", () => {
  const embed = parseOllamaEmbed(
    { model: "nomic", input: ["a", "b"], truncate: true, dimensions: 256, keep_alive: 0 },
    D,
  );
  assertEquals(embed.stream, false);
  assertEquals(embed.endpoint, "embeddings");
  assertEquals(embed.openai, {
    model: "nomic",
    input: ["a", "b"],
    encoding_format: "float",
    dimensions: 256,
  });
  const one = parseOllamaEmbed({ model: "nomic", input: "a", stream: true }, D);
  assertEquals(one.stream, false);
  assertEquals(one.openai.input, "a");
  const legacy = parseOllamaLegacyEmbeddings({ prompt: "hello" }, { ...D, fallbackModel: "nomic" });
  assertEquals(legacy.kind, "embeddings");
  assertEquals(legacy.openai, { model: "nomic", input: "hello", encoding_format: "float" });
});

Deno.test("parseOllamaShow() reads model, or name as older clients send it", () => {
  assertEquals(parseOllamaShow({ model: "qwen3:8b", verbose: true }), "qwen3:8b");
  assertEquals(parseOllamaShow({ name: "llava" }), "llava");
  for (const body of [{}, { model: 5 }, { name: "" }, { model: "x".repeat(300) }]) {
    const err = refusal(() => parseOllamaShow(body));
    assertEquals([err.status, err.param], [400, "model"], JSON.stringify(body));
  }
});

Deno.test("Ollama parsers estimate the translated body and reserve the answer limit", () => {
  const text = parseOllamaChat({
    model: "m",
    messages: [{ role: "user", content: "x".repeat(400) }],
  }, D);
  const withImage = parseOllamaChat({
    model: "m",
    messages: [{ role: "user", content: "x".repeat(400), images: [PNG] }],
  }, D);
  const withTools = parseOllamaChat({
    model: "m",
    messages: [{ role: "user", content: "x".repeat(400) }],
    tools: [{ type: "function", function: { name: "f", description: "d".repeat(400) } }],
    options: { num_predict: 50 },
  }, D);
  assert(text.promptTokens >= 100, `${text.promptTokens}`);
  assertEquals(text.reserveTokens, text.promptTokens + D.defaultMaxTokens);
  assert(withImage.promptTokens > text.promptTokens + 500);
  assert(withTools.promptTokens >= text.promptTokens + 100);
  assertEquals(withTools.reserveTokens, withTools.promptTokens + 50);
  const generate = parseOllamaGenerate({ model: "m", prompt: "x".repeat(400), system: "y" }, D);
  assert(generate.promptTokens >= 100);
  const embed = parseOllamaEmbed({ model: "m", input: ["x".repeat(40), "y".repeat(40)] }, D);
  assertEquals([embed.promptTokens, embed.reserveTokens], [20, 20]);
  const legacy = parseOllamaLegacyEmbeddings({ model: "m", prompt: "x".repeat(40) }, D);
  assertEquals([legacy.promptTokens, legacy.reserveTokens], [10, 10]);
});

/** Hostile values for every field read: each is a 400 naming the field, never another error. */
const HOSTILE: [string, Parser, Json, string][] = [
  ["no model", parseOllamaChat, { messages: [user] }, "model"],
  ["no model, bad messages", parseOllamaChat, { messages: 5 }, "model"],
  ["numeric model", parseOllamaChat, { model: 5, messages: [user] }, "model"],
  ["blank model", parseOllamaChat, { model: "  ", messages: [user] }, "model"],
  ["long model", parseOllamaChat, { model: "m".repeat(257), messages: [user] }, "model"],
  ["object model", parseOllamaEmbed, { model: {}, input: "x" }, "model"],
  ["no messages", parseOllamaChat, { model: "m" }, "messages"],
  ["messages object", parseOllamaChat, { model: "m", messages: { 0: user } }, "messages"],
  ["null message", parseOllamaChat, { model: "m", messages: [null] }, "messages[0]"],
  ["array message", parseOllamaChat, { model: "m", messages: [[user]] }, "messages[0]"],
  [
    "unknown role",
    parseOllamaChat,
    { model: "m", messages: [{ role: "wizard" }] },
    "messages[0].role",
  ],
  ["numeric role", parseOllamaChat, { model: "m", messages: [{ role: 1 }] }, "messages[0].role"],
  [
    "no role",
    parseOllamaChat,
    { model: "m", messages: [user, { content: "x" }] },
    "messages[1].role",
  ],
  [
    "numeric content",
    parseOllamaChat,
    { model: "m", messages: [{ role: "user", content: 5 }] },
    "messages[0].content",
  ],
  ["parts content", parseOllamaChat, {
    model: "m",
    messages: [{ role: "user", content: [{ type: "text", text: "x" }] }],
  }, "messages[0].content"],
  [
    "images string",
    parseOllamaChat,
    { model: "m", messages: [{ ...user, images: PNG }] },
    "messages[0].images",
  ],
  ["image not base64", parseOllamaChat, {
    model: "m",
    messages: [{ ...user, images: ["not base64!"] }],
  }, "messages[0].images[0]"],
  ["image data url", parseOllamaChat, {
    model: "m",
    messages: [{ ...user, images: [`data:image/png;base64,${PNG}`] }],
  }, "messages[0].images[0]"],
  [
    "image unpadded",
    parseOllamaChat,
    { model: "m", messages: [{ ...user, images: ["abc"] }] },
    "messages[0].images[0]",
  ],
  [
    "image empty",
    parseOllamaChat,
    { model: "m", messages: [{ ...user, images: [""] }] },
    "messages[0].images[0]",
  ],
  [
    "image number",
    parseOllamaChat,
    { model: "m", messages: [{ ...user, images: [PNG, 7] }] },
    "messages[0].images[1]",
  ],
  ["tool calls on user", parseOllamaChat, {
    model: "m",
    messages: [{ ...user, tool_calls: [{ function: { name: "f" } }] }],
  }, "messages[0].tool_calls"],
  ["tool calls object", parseOllamaChat, {
    model: "m",
    messages: [{ role: "assistant", tool_calls: {} }],
  }, "messages[0].tool_calls"],
  ["tool call null", parseOllamaChat, {
    model: "m",
    messages: [{ role: "assistant", tool_calls: [null] }],
  }, "messages[0].tool_calls[0]"],
  ["tool call no function", parseOllamaChat, {
    model: "m",
    messages: [{ role: "assistant", tool_calls: [{}] }],
  }, "messages[0].tool_calls[0].function"],
  ["tool call no name", parseOllamaChat, {
    model: "m",
    messages: [{ role: "assistant", tool_calls: [{ function: { arguments: {} } }] }],
  }, "messages[0].tool_calls[0].function.name"],
  ["tool call numeric args", parseOllamaChat, {
    model: "m",
    messages: [{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: 5 } }] }],
  }, "messages[0].tool_calls[0].function.arguments"],
  ["tool call array args", parseOllamaChat, {
    model: "m",
    messages: [{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: [1] } }] }],
  }, "messages[0].tool_calls[0].function.arguments"],
  ["tool call text args", parseOllamaChat, {
    model: "m",
    messages: [{
      role: "assistant",
      tool_calls: [{ function: { name: "f", arguments: "{oops" } }],
    }],
  }, "messages[0].tool_calls[0].function.arguments"],
  ["tool name number", parseOllamaChat, {
    model: "m",
    messages: [{ role: "tool", content: "x", tool_name: 5 }],
  }, "messages[0].tool_name"],
  ["tool call id number", parseOllamaChat, {
    model: "m",
    messages: [{ role: "tool", content: "x", tool_call_id: 5 }],
  }, "messages[0].tool_call_id"],
  ["tools object", parseOllamaChat, { model: "m", messages: [user], tools: {} }, "tools"],
  ["tool null", parseOllamaChat, { model: "m", messages: [user], tools: [null] }, "tools[0]"],
  ["tool type", parseOllamaChat, {
    model: "m",
    messages: [user],
    tools: [{ type: "retrieval", function: { name: "f" } }],
  }, "tools[0].type"],
  ["tool no function", parseOllamaChat, {
    model: "m",
    messages: [user],
    tools: [{ type: "function" }],
  }, "tools[0].function"],
  [
    "tool no name",
    parseOllamaChat,
    { model: "m", messages: [user], tools: [{ function: {} }] },
    "tools[0].function.name",
  ],
  ["tool description", parseOllamaChat, {
    model: "m",
    messages: [user],
    tools: [{ function: { name: "f", description: 1 } }],
  }, "tools[0].function.description"],
  ["tool parameters", parseOllamaChat, {
    model: "m",
    messages: [user],
    tools: [{ function: { name: "f", parameters: "x" } }],
  }, "tools[0].function.parameters"],
  ["format xml", parseOllamaChat, { model: "m", messages: [user], format: "xml" }, "format"],
  ["format number", parseOllamaChat, { model: "m", messages: [user], format: 5 }, "format"],
  ["format array", parseOllamaChat, { model: "m", messages: [user], format: [] }, "format"],
  ["think level", parseOllamaChat, { model: "m", messages: [user], think: "extreme" }, "think"],
  ["think number", parseOllamaChat, { model: "m", messages: [user], think: 1 }, "think"],
  ["stream string", parseOllamaChat, { model: "m", messages: [user], stream: "yes" }, "stream"],
  ["options array", parseOllamaChat, { model: "m", messages: [user], options: [] }, "options"],
  ["options string", parseOllamaGenerate, { model: "m", prompt: "x", options: "x" }, "options"],
  ["temperature text", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { temperature: "hot" },
  }, "options.temperature"],
  ["temperature negative", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { temperature: -1 },
  }, "options.temperature"],
  ["temperature infinite", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { temperature: Infinity },
  }, "options.temperature"],
  [
    "top_p above 1",
    parseOllamaChat,
    { model: "m", messages: [user], options: { top_p: 2 } },
    "options.top_p",
  ],
  [
    "top_k fraction",
    parseOllamaChat,
    { model: "m", messages: [user], options: { top_k: 1.5 } },
    "options.top_k",
  ],
  [
    "top_k negative",
    parseOllamaChat,
    { model: "m", messages: [user], options: { top_k: -1 } },
    "options.top_k",
  ],
  [
    "seed fraction",
    parseOllamaChat,
    { model: "m", messages: [user], options: { seed: 1.5 } },
    "options.seed",
  ],
  [
    "seed huge",
    parseOllamaChat,
    { model: "m", messages: [user], options: { seed: 2 ** 60 } },
    "options.seed",
  ],
  ["num_predict text", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { num_predict: "10" },
  }, "options.num_predict"],
  ["num_predict huge", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { num_predict: 1e12 },
  }, "options.num_predict"],
  ["num_predict below -2", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { num_predict: -3 },
  }, "options.num_predict"],
  ["num_predict fraction", parseOllamaGenerate, {
    model: "m",
    prompt: "x",
    options: { num_predict: 2.5 },
  }, "options.num_predict"],
  [
    "stop number",
    parseOllamaChat,
    { model: "m", messages: [user], options: { stop: 5 } },
    "options.stop",
  ],
  [
    "stop numbers",
    parseOllamaChat,
    { model: "m", messages: [user], options: { stop: ["a", 1] } },
    "options.stop",
  ],
  ["presence penalty", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { presence_penalty: 3 },
  }, "options.presence_penalty"],
  ["frequency penalty", parseOllamaChat, {
    model: "m",
    messages: [user],
    options: { frequency_penalty: "x" },
  }, "options.frequency_penalty"],
  ["prompt number", parseOllamaGenerate, { model: "m", prompt: 5 }, "prompt"],
  ["system number", parseOllamaGenerate, { model: "m", prompt: "x", system: 5 }, "system"],
  ["suffix number", parseOllamaGenerate, { model: "m", prompt: "x", suffix: 5 }, "suffix"],
  ["template number", parseOllamaGenerate, { model: "m", prompt: "x", template: [] }, "template"],
  ["raw string", parseOllamaGenerate, { model: "m", prompt: "x", raw: "yes" }, "raw"],
  ["context string", parseOllamaGenerate, { model: "m", prompt: "x", context: "1,2" }, "context"],
  [
    "context fractions",
    parseOllamaGenerate,
    { model: "m", prompt: "x", context: [1.5] },
    "context",
  ],
  [
    "generate images",
    parseOllamaGenerate,
    { model: "m", prompt: "x", images: ["!!"] },
    "images[0]",
  ],
  ["generate format", parseOllamaGenerate, { model: "m", prompt: "x", format: true }, "format"],
  ["generate think", parseOllamaGenerate, { model: "m", prompt: "x", think: "max!" }, "think"],
  ["no input", parseOllamaEmbed, { model: "m" }, "input"],
  ["numeric input", parseOllamaEmbed, { model: "m", input: 5 }, "input"],
  ["empty input list", parseOllamaEmbed, { model: "m", input: [] }, "input"],
  ["token input", parseOllamaEmbed, { model: "m", input: [[1, 2]] }, "input"],
  ["too many inputs", parseOllamaEmbed, {
    model: "m",
    input: Array(MAX_EMBED_INPUTS + 1).fill("x"),
  }, "input"],
  ["dimensions zero", parseOllamaEmbed, { model: "m", input: "x", dimensions: 0 }, "dimensions"],
  ["dimensions text", parseOllamaEmbed, { model: "m", input: "x", dimensions: "3" }, "dimensions"],
  ["dimensions huge", parseOllamaEmbed, { model: "m", input: "x", dimensions: 1e9 }, "dimensions"],
  ["truncate string", parseOllamaEmbed, { model: "m", input: "x", truncate: "no" }, "truncate"],
  ["embed options", parseOllamaEmbed, { model: "m", input: "x", options: 5 }, "options"],
  ["no prompt", parseOllamaLegacyEmbeddings, { model: "m" }, "prompt"],
  ["empty prompt", parseOllamaLegacyEmbeddings, { model: "m", prompt: "" }, "prompt"],
  ["list prompt", parseOllamaLegacyEmbeddings, { model: "m", prompt: ["x"] }, "prompt"],
  [
    "legacy options",
    parseOllamaLegacyEmbeddings,
    { model: "m", prompt: "x", options: [] },
    "options",
  ],
];

Deno.test("Ollama parsers refuse hostile values with a 400 naming the field", () => {
  for (const [name, parse, body, param] of HOSTILE) {
    const err = refusal(() => parse(body, D));
    assertEquals(err.status, 400, name);
    assertEquals(err.type, "invalid_request_error", name);
    assertEquals(err.param, param, name);
  }
});
