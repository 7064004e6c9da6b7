import { assert, assertEquals } from "../../tests/assert.ts";
import { GatewayError } from "../errors.ts";
import { estimateResponsesPromptTokens, parseResponsesRequest } from "./responses_request.ts";

type Json = Record<string, unknown>;

const IMAGE = "data:image/png;base64,iVBORw0KGgo=";

/** The chat body of a request, or the error it raised. */
function translate(body: Json, fallback: string | null = null): Json {
  return parseResponsesRequest(body, fallback).chat;
}

function refusal(body: Json): GatewayError {
  try {
    parseResponsesRequest(body, null);
  } catch (err) {
    assert(err instanceof GatewayError, `expected a GatewayError, got ${err}`);
    assertEquals(err.status, 400);
    assertEquals(err.type, "invalid_request_error");
    return err;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

const TRANSLATIONS: [string, Json, Json][] = [
  [
    "a string input becomes one user message",
    { model: "m", input: "Hi" },
    { model: "m", messages: [{ role: "user", content: "Hi" }], stream: false },
  ],
  [
    "instructions lead as a system message; developer turns are system turns",
    {
      model: "m",
      instructions: "Be brief",
      input: [
        { role: "developer", content: "Use French" },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] },
      ],
    },
    {
      model: "m",
      messages: [
        { role: "system", content: "Be brief" },
        { role: "system", content: "Use French" },
        { role: "user", content: "Hi" },
      ],
      stream: false,
    },
  ],
  [
    "images become image_url parts; assistant output_text becomes a string",
    {
      model: "m",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "What is it?" },
            { type: "input_image", image_url: IMAGE, detail: "low" },
            { type: "input_image", image_url: "https://example.com/a.png", detail: "original" },
          ],
        },
        {
          type: "message",
          role: "assistant",
          id: "msg_1",
          status: "completed",
          content: [{ type: "output_text", text: "A cat", annotations: [] }],
        },
      ],
    },
    {
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is it?" },
            { type: "image_url", image_url: { url: IMAGE, detail: "low" } },
            { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          ],
        },
        { role: "assistant", content: "A cat" },
      ],
      stream: false,
    },
  ],
  [
    "function calls join the assistant turn before them; outputs become tool messages",
    {
      model: "m",
      input: [
        { role: "user", content: "Weather in Paris and Rome?" },
        { role: "assistant", content: "Checking." },
        { type: "function_call", call_id: "c1", name: "weather", arguments: '{"city":"Paris"}' },
        { type: "function_call", call_id: "c2", name: "weather", arguments: '{"city":"Rome"}' },
        { type: "reasoning", id: "rs_1", summary: [] },
        { type: "function_call_output", call_id: "c1", output: "Sunny" },
        {
          type: "function_call_output",
          call_id: "c2",
          output: [{ type: "input_text", text: "Rain" }],
        },
      ],
    },
    {
      model: "m",
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "Checking.",
          tool_calls: [
            {
              id: "c1",
              type: "function",
              function: { name: "weather", arguments: '{"city":"Paris"}' },
            },
            {
              id: "c2",
              type: "function",
              function: { name: "weather", arguments: '{"city":"Rome"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "Sunny" },
        { role: "tool", tool_call_id: "c2", content: "Rain" },
      ],
      stream: false,
    },
  ],
  [
    "a function call without an assistant turn gets one with null content",
    {
      model: "m",
      input: [
        { role: "user", content: "Go" },
        { type: "function_call", call_id: "c1", name: "go", arguments: "{}" },
        { type: "function_call_output", call_id: "c1", output: "done" },
      ],
    },
    {
      model: "m",
      messages: [
        { role: "user", content: "Go" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c1", type: "function", function: { name: "go", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "c1", content: "done" },
      ],
      stream: false,
    },
  ],
  [
    "sampling, limits, user, reasoning, tools and json_schema map to their chat fields",
    {
      model: "m",
      input: "Hi",
      stream: true,
      store: true,
      max_output_tokens: 64,
      temperature: 0.2,
      top_p: 0.9,
      safety_identifier: "u-1",
      reasoning: { effort: "low", summary: "auto" },
      parallel_tool_calls: false,
      tools: [{
        type: "function",
        name: "weather",
        description: "Weather of a city",
        parameters: { type: "object", properties: { city: { type: "string" } } },
        strict: true,
      }],
      tool_choice: { type: "function", name: "weather" },
      text: {
        format: {
          type: "json_schema",
          name: "answer",
          schema: { type: "object" },
          strict: true,
        },
        verbosity: "low",
      },
      metadata: { team: "a" },
      include: ["message.output_text.logprobs"],
      truncation: "disabled",
    },
    {
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 64,
      temperature: 0.2,
      top_p: 0.9,
      user: "u-1",
      reasoning_effort: "low",
      parallel_tool_calls: false,
      tools: [{
        type: "function",
        function: {
          name: "weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
          strict: true,
        },
      }],
      tool_choice: { type: "function", function: { name: "weather" } },
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object" }, strict: true },
      },
    },
  ],
  [
    "allowed_tools narrows the offered tools; json_object and text formats",
    {
      model: "m",
      input: "Hi",
      tools: [
        { type: "function", name: "a", parameters: null, strict: null },
        { type: "function", name: "b" },
      ],
      tool_choice: {
        type: "allowed_tools",
        mode: "required",
        tools: [{ type: "function", name: "b" }],
      },
      text: { format: { type: "json_object" } },
    },
    {
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
      stream: false,
      tool_choice: "required",
      tools: [{ type: "function", function: { name: "b" } }],
      response_format: { type: "json_object" },
    },
  ],
  [
    "a missing model takes the fallback; plain text format and null fields add nothing",
    {
      input: "Hi",
      text: { format: { type: "text" } },
      temperature: null,
      previous_response_id: null,
      background: false,
      tool_choice: "none",
    },
    {
      model: "fallback",
      messages: [{ role: "user", content: "Hi" }],
      stream: false,
      tool_choice: "none",
    },
  ],
];

for (const [name, body, chat] of TRANSLATIONS) {
  Deno.test(`parseResponsesRequest() translates: ${name}`, () => {
    assertEquals(translate(body, "fallback"), chat);
  });
}

Deno.test("parseResponsesRequest() reports model, stream and max_output_tokens", () => {
  const parsed = parseResponsesRequest({ input: "x", stream: true, max_output_tokens: 9 }, "d");
  assertEquals([parsed.model, parsed.stream, parsed.maxOutputTokens], ["d", true, 9]);
  const plain = parseResponsesRequest({ model: "m", input: "x" }, null);
  assertEquals([plain.model, plain.stream, plain.maxOutputTokens], ["m", false, null]);
});

const OK = { model: "m", input: "Hi" };
const UNSUPPORTED: [string, Json, string][] = [
  ["previous_response_id", { previous_response_id: "resp_1" }, "previous_response_id"],
  ["conversation", { conversation: { id: "conv_1" } }, "conversation"],
  ["prompt templates", { prompt: { id: "pmpt_1" } }, "prompt"],
  ["background", { background: true }, "background"],
  ["a web_search tool", { tools: [{ type: "web_search" }] }, "tools[0].type"],
  [
    "a file_search tool after a function",
    { tools: [{ type: "function", name: "f" }, { type: "file_search", vector_store_ids: [] }] },
    "tools[1].type",
  ],
  ["a built-in tool choice", { tool_choice: { type: "web_search_preview" } }, "tool_choice"],
  ["item references", { input: [{ type: "item_reference", id: "msg_1" }] }, "input[0]"],
  ["other input items", { input: [{ type: "web_search_call", id: "ws" }] }, "input[0].type"],
  [
    "images by file id",
    { input: [{ role: "user", content: [{ type: "input_image", file_id: "file-1" }] }] },
    "input[0].content[0].file_id",
  ],
  [
    "input files",
    { input: [{ role: "user", content: [{ type: "input_file", file_data: "x" }] }] },
    "input[0].content[0]",
  ],
  [
    "images in tool outputs",
    {
      input: [{
        type: "function_call_output",
        call_id: "c",
        output: [{ type: "input_image", image_url: IMAGE }],
      }],
    },
    "input[0].output[0]",
  ],
];

for (const [name, patch, param] of UNSUPPORTED) {
  Deno.test(`parseResponsesRequest() refuses ${name} as unsupported_parameter`, () => {
    const err = refusal({ ...OK, ...patch });
    assertEquals([err.code, err.param], ["unsupported_parameter", param]);
    assert(!err.message.endsWith("."), err.message);
  });
}

const INVALID: [Json, string][] = [
  [{ model: undefined }, "model"],
  [{ model: "" }, "model"],
  [{ model: 7 }, "model"],
  [{ model: "x".repeat(257) }, "model"],
  [{ input: undefined }, "input"],
  [{ input: null }, "input"],
  [{ input: [] }, "input"],
  [{ input: 3 }, "input"],
  [{ input: { role: "user" } }, "input"],
  [{ input: [{ type: "reasoning", summary: [] }] }, "input"],
  [{ input: [null] }, "input[0]"],
  [{ input: ["Hi"] }, "input[0]"],
  [{ input: [[1]] }, "input[0]"],
  [{ input: [{}] }, "input[0].type"],
  [{ input: [{ type: 5 }] }, "input[0].type"],
  [{ input: [{ role: "tool", content: "x" }] }, "input[0].role"],
  [{ input: [{ role: "constructor", content: "x" }] }, "input[0].role"],
  [{ input: [{ role: "user" }] }, "input[0].content"],
  [{ input: [{ role: "user", content: 1 }] }, "input[0].content"],
  [{ input: [{ role: "user", content: [null] }] }, "input[0].content[0]"],
  [{ input: [{ role: "user", content: [{}] }] }, "input[0].content[0].type"],
  [{ input: [{ role: "user", content: [{ type: "input_text" }] }] }, "input[0].content[0].text"],
  [
    { input: [{ role: "user", content: [{ type: "input_text", text: 1 }] }] },
    "input[0].content[0].text",
  ],
  [
    {
      input: [{
        role: "user",
        content: [{ type: "input_image", image_url: "file:///etc/passwd" }],
      }],
    },
    "input[0].content[0].image_url",
  ],
  [
    { input: [{ role: "system", content: [{ type: "input_image", image_url: IMAGE }] }] },
    "input[0].content",
  ],
  [{ input: [{ type: "function_call", name: "f", arguments: "{}" }] }, "input[0].call_id"],
  [{ input: [{ type: "function_call", call_id: "c", arguments: "{}" }] }, "input[0].name"],
  [
    { input: [{ type: "function_call", call_id: "c", name: "f", arguments: {} }] },
    "input[0].arguments",
  ],
  [{ input: [{ type: "function_call_output", call_id: "", output: "x" }] }, "input[0].call_id"],
  [{ input: [{ type: "function_call_output", call_id: "c", output: 5 }] }, "input[0].output"],
  [{ input: [{ type: "function_call_output", call_id: "c" }] }, "input[0].output"],
  [{ instructions: 5 }, "instructions"],
  [{ stream: "yes" }, "stream"],
  [{ store: 1 }, "store"],
  [{ background: "no" }, "background"],
  [{ max_output_tokens: 0 }, "max_output_tokens"],
  [{ max_output_tokens: 1.5 }, "max_output_tokens"],
  [{ max_output_tokens: "9" }, "max_output_tokens"],
  [{ max_output_tokens: 100_000_001 }, "max_output_tokens"],
  [{ temperature: 3 }, "temperature"],
  [{ temperature: -1 }, "temperature"],
  [{ temperature: "hot" }, "temperature"],
  [{ top_p: 1.1 }, "top_p"],
  [{ top_p: [] }, "top_p"],
  [{ user: 5 }, "user"],
  [{ safety_identifier: {} }, "safety_identifier"],
  [{ reasoning: "high" }, "reasoning"],
  [{ reasoning: { effort: "extreme" } }, "reasoning.effort"],
  [{ reasoning: { effort: 3 } }, "reasoning.effort"],
  [{ parallel_tool_calls: "true" }, "parallel_tool_calls"],
  [{ tools: {} }, "tools"],
  [{ tools: "f" }, "tools"],
  [{ tools: [null] }, "tools[0]"],
  [{ tools: [{}] }, "tools[0].type"],
  [{ tools: [{ type: "function" }] }, "tools[0].name"],
  [{ tools: [{ type: "function", name: "f", description: 1 }] }, "tools[0].description"],
  [{ tools: [{ type: "function", name: "f", parameters: "{}" }] }, "tools[0].parameters"],
  [{ tools: [{ type: "function", name: "f", strict: "yes" }] }, "tools[0].strict"],
  [{ tool_choice: "always" }, "tool_choice"],
  [{ tool_choice: 1 }, "tool_choice"],
  [{ tool_choice: { type: "function" } }, "tool_choice.name"],
  [{ tool_choice: { type: "allowed_tools", mode: "x", tools: [] } }, "tool_choice.mode"],
  [{ tool_choice: { type: "allowed_tools", mode: "auto" } }, "tool_choice.tools"],
  [
    { tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function" }] } },
    "tool_choice.tools[0].name",
  ],
  [{ text: "json" }, "text"],
  [{ text: { format: "json" } }, "text.format"],
  [{ text: { format: { type: "yaml" } } }, "text.format.type"],
  [{ text: { format: { type: "json_schema", schema: {} } } }, "text.format.name"],
  [{ text: { format: { type: "json_schema", name: "a" } } }, "text.format.schema"],
  [{ text: { format: { type: "json_schema", name: "a", schema: [] } } }, "text.format.schema"],
  [
    { text: { format: { type: "json_schema", name: "a", schema: {}, strict: 1 } } },
    "text.format.strict",
  ],
  [
    { text: { format: { type: "json_schema", name: "a", schema: {}, description: 2 } } },
    "text.format.description",
  ],
  [{ metadata: [] }, "metadata"],
  [{ metadata: { a: 1 } }, "metadata"],
  [
    { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) },
    "metadata",
  ],
];

Deno.test("parseResponsesRequest() answers each malformed field with a 400 naming it", () => {
  for (const [patch, param] of INVALID) {
    const err = refusal({ ...OK, ...patch });
    assertEquals(err.param, param, `${JSON.stringify(patch)}: ${err.message}`);
    assertEquals(err.code, "invalid_value", JSON.stringify(patch));
  }
});

/** Values of every JSON kind, including the ones that break naive code. */
const GARBAGE: unknown[] = [
  null,
  0,
  -1,
  1e308,
  "",
  "x",
  true,
  [],
  [null],
  [1, "a", {}],
  {},
  { type: {} },
  { type: "function", name: {} },
  { __proto__: { polluted: true } },
  [{ type: "message", role: "user", content: [{ type: "input_image", image_url: 5 }] }],
];

/** Replaces, one at a time, every field of a rich request by every garbage value. */
function* mutants(value: unknown, path: (string | number)[] = []): Generator<[string, unknown]> {
  if (typeof value !== "object" || value === null) return;
  for (const [key, child] of Object.entries(value)) {
    const here = [...path, Array.isArray(value) ? Number(key) : key];
    for (const bad of GARBAGE) yield [here.join("."), replaceAt(RICH, here, bad)];
    yield* mutants(child, here);
  }
}

function replaceAt(root: unknown, path: (string | number)[], bad: unknown): unknown {
  if (path.length === 0) return bad;
  const [head, ...rest] = path;
  const copy = Array.isArray(root) ? [...root] : { ...(root as Json) };
  (copy as Record<string | number, unknown>)[head] = replaceAt(
    (root as Record<string | number, unknown>)[head],
    rest,
    bad,
  );
  return copy;
}

const RICH: Json = {
  model: "m",
  instructions: "Be brief",
  input: [
    {
      role: "user",
      content: [{ type: "input_text", text: "Hi" }, { type: "input_image", image_url: IMAGE }],
    },
    { type: "message", role: "assistant", content: [{ type: "output_text", text: "Yes" }] },
    { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
    { type: "function_call_output", call_id: "c1", output: [{ type: "input_text", text: "ok" }] },
  ],
  tools: [{ type: "function", name: "f", parameters: { type: "object" }, strict: true }],
  tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: "f" }] },
  text: { format: { type: "json_schema", name: "a", schema: { type: "object" } } },
  reasoning: { effort: "low" },
  max_output_tokens: 10,
  temperature: 1,
  top_p: 1,
  stream: true,
  metadata: { a: "b" },
};

Deno.test("parseResponsesRequest() answers any garbage in any field with a 400 or a body", () => {
  assertEquals(translate(RICH).model, "m");
  let refused = 0;
  let count = 0;
  for (const [path, body] of mutants(RICH)) {
    count++;
    try {
      const parsed = parseResponsesRequest(body as Json, null);
      JSON.stringify(parsed.chat);
    } catch (err) {
      assert(err instanceof GatewayError, `${path}: ${err}`);
      assertEquals(err.status, 400, `${path}: ${err.message}`);
      assert(err.param !== null, `${path}: ${err.message} names no param`);
      refused++;
    }
    // The estimate runs on bodies before they are validated: it must never throw.
    const tokens = estimateResponsesPromptTokens(body as Json);
    assert(Number.isSafeInteger(tokens) && tokens >= 0, `${path}: estimate ${tokens}`);
  }
  assert(count > 500 && refused > count / 2, `${refused} of ${count} refused`);
});

Deno.test("estimateResponsesPromptTokens() counts instructions, text, images, calls and tools", () => {
  const text = "word ".repeat(400); // 2000 characters, about 500 tokens
  const small = estimateResponsesPromptTokens({ input: "Hi" });
  const long = estimateResponsesPromptTokens({ input: text });
  assert(long - small >= 490, `${small} -> ${long}`);
  const withInstructions = estimateResponsesPromptTokens({ input: "Hi", instructions: text });
  assert(withInstructions - small >= 490, `${small} -> ${withInstructions}`);
  const image = estimateResponsesPromptTokens({
    input: [{ role: "user", content: [{ type: "input_image", image_url: IMAGE }] }],
  });
  assert(image >= 765, `image ${image}`);
  const call = estimateResponsesPromptTokens({
    input: [
      { type: "function_call", call_id: "c", name: "f", arguments: text },
      { type: "function_call_output", call_id: "c", output: text },
    ],
  });
  assert(call >= 980, `calls ${call}`);
  const tools = estimateResponsesPromptTokens({
    input: "Hi",
    tools: [{ type: "function", name: "f", description: text }],
  });
  assert(tools - small >= 490, `${small} -> ${tools}`);
  for (const garbage of GARBAGE) {
    const tokens = estimateResponsesPromptTokens({ input: garbage, instructions: garbage });
    assert(Number.isSafeInteger(tokens) && tokens >= 0, `${JSON.stringify(garbage)}: ${tokens}`);
  }
});
