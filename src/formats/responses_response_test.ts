import { assert, assertEquals } from "../../tests/assert.ts";
import { chatToResponse, type ResponseContext, responsesUsage } from "./responses_response.ts";

type Json = Record<string, unknown>;

const CTX: ResponseContext = {
  id: "resp_r1",
  createdAt: 1_700_000_000,
  model: "qwen3:8b",
  request: { model: "qwen3:8b", input: "Hi" },
};

function chat(message: Json, finish: string | null = "stop", usage: unknown = undefined): Json {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1,
    model: "upstream-name",
    choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finish }],
    ...(usage === undefined ? {} : { usage }),
  };
}

Deno.test("chatToResponse() turns a text answer into one message and maps usage", () => {
  const response = chatToResponse(
    chat({ content: "Bonjour" }, "stop", {
      prompt_tokens: 12,
      completion_tokens: 3,
      total_tokens: 999,
      prompt_tokens_details: { cached_tokens: 4 },
      completion_tokens_details: { reasoning_tokens: 2 },
    }),
    CTX,
  );
  assertEquals(response.id, "resp_r1");
  assertEquals(response.object, "response");
  assertEquals(response.created_at, 1_700_000_000);
  assertEquals(response.model, "qwen3:8b");
  assertEquals(response.status, "completed");
  assertEquals(response.incomplete_details, null);
  assertEquals(response.error, null);
  assertEquals(response.store, false);
  assertEquals(response.output, [{
    id: "msg_r1_0",
    type: "message",
    status: "completed",
    role: "assistant",
    content: [{ type: "output_text", text: "Bonjour", annotations: [], logprobs: [] }],
  }]);
  assertEquals(response.usage, {
    input_tokens: 12,
    input_tokens_details: { cached_tokens: 4 },
    output_tokens: 3,
    output_tokens_details: { reasoning_tokens: 2 },
    total_tokens: 15,
  });
});

Deno.test("chatToResponse() echoes the request's settings", () => {
  const tools = [{ type: "function", name: "f", parameters: { type: "object" } }];
  const format = { type: "json_schema", name: "a", schema: { type: "object" } };
  const response = chatToResponse(chat({ content: "{}" }), {
    ...CTX,
    request: {
      instructions: "Be brief",
      temperature: 0.3,
      top_p: 0.5,
      max_output_tokens: 100,
      tools,
      tool_choice: "required",
      parallel_tool_calls: false,
      text: { format },
      reasoning: { effort: "low" },
      metadata: { team: "a" },
      user: "u1",
    },
  });
  assertEquals(response.instructions, "Be brief");
  assertEquals(response.temperature, 0.3);
  assertEquals(response.top_p, 0.5);
  assertEquals(response.max_output_tokens, 100);
  assertEquals(response.tools, tools);
  assertEquals(response.tool_choice, "required");
  assertEquals(response.parallel_tool_calls, false);
  assertEquals(response.text, { format });
  assertEquals(response.reasoning, { effort: "low", summary: null });
  assertEquals(response.metadata, { team: "a" });
  assertEquals(response.user, "u1");
  // Defaults when the request said nothing (or something unusable).
  const bare = chatToResponse(chat({ content: "x" }), {
    ...CTX,
    request: { tools: "x", text: 5, reasoning: [] },
  });
  assertEquals(
    [bare.tools, bare.tool_choice, bare.text, bare.temperature, bare.parallel_tool_calls],
    [[], "auto", { format: { type: "text" } }, null, true],
  );
});

Deno.test("chatToResponse() turns tool calls into function_call items with unique ids", () => {
  const response = chatToResponse(
    chat({
      content: null,
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "weather", arguments: '{"c":1}' } },
        { id: "call_a", type: "function", function: { name: "weather", arguments: { c: 2 } } },
        { type: "function", function: { name: "time" } },
        "garbage",
      ],
    }, "tool_calls"),
    CTX,
  );
  assertEquals(response.status, "completed");
  assertEquals(response.output, [
    {
      id: "fc_r1_0",
      type: "function_call",
      status: "completed",
      call_id: "call_a",
      name: "weather",
      arguments: '{"c":1}',
    },
    {
      id: "fc_r1_1",
      type: "function_call",
      status: "completed",
      call_id: "call_r1_1",
      name: "weather",
      arguments: '{"c":2}',
    },
    {
      id: "fc_r1_2",
      type: "function_call",
      status: "completed",
      call_id: "call_r1_2",
      name: "time",
      arguments: "{}",
    },
  ]);
});

Deno.test("chatToResponse() puts the text before the tool calls", () => {
  const response = chatToResponse(
    chat({
      content: [{ type: "text", text: "Let me " }, { type: "text", text: "check." }],
      tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }],
    }, "tool_calls"),
    CTX,
  );
  const output = response.output as Json[];
  assertEquals(output.map((item) => [item.type, item.id]), [
    ["message", "msg_r1_0"],
    ["function_call", "fc_r1_1"],
  ]);
  assertEquals((output[0].content as Json[])[0].text, "Let me check.");
});

Deno.test("chatToResponse() reports a cut by max_tokens as incomplete", () => {
  const response = chatToResponse(chat({ content: "Once upon" }, "length"), CTX);
  assertEquals(response.status, "incomplete");
  assertEquals(response.incomplete_details, { reason: "max_output_tokens" });
  assertEquals((response.output as Json[])[0].status, "incomplete");
  const filtered = chatToResponse(chat({ content: "" }, "content_filter"), CTX);
  assertEquals(filtered.incomplete_details, { reason: "content_filter" });
});

Deno.test("chatToResponse() survives answers without choices, message or content", () => {
  for (const garbage of [{}, { choices: [] }, { choices: [null] }, { choices: [{}] }, chat({})]) {
    const response = chatToResponse(garbage, CTX);
    assertEquals(response.status, "completed");
    const output = response.output as Json[];
    assertEquals(output.length, 1);
    assertEquals((output[0].content as Json[])[0].text, "");
    assertEquals(response.usage, null);
  }
});

Deno.test("responsesUsage() keeps only sane counts and recomputes the total", () => {
  const insane: unknown[] = [
    null,
    "12",
    [],
    {},
    { prompt_tokens: -1, completion_tokens: 2 },
    { prompt_tokens: 1.5, completion_tokens: 2 },
    { prompt_tokens: "3", completion_tokens: 2 },
    { prompt_tokens: 2e9, completion_tokens: 2 },
    { prompt_tokens: 2, completion_tokens: -5 },
  ];
  for (const usage of insane) assertEquals(responsesUsage(usage), null, JSON.stringify(usage));
  const usage = responsesUsage({
    prompt_tokens: 5,
    completion_tokens: 2,
    total_tokens: 1,
    prompt_tokens_details: { cached_tokens: 9 },
    completion_tokens_details: { reasoning_tokens: "1" },
  });
  assert(usage !== null);
  assertEquals(usage.total_tokens, 7);
  // Details larger than their total, or not numbers, are dropped rather than trusted.
  assertEquals(usage.input_tokens_details, { cached_tokens: 0 });
  assertEquals(usage.output_tokens_details, { reasoning_tokens: 0 });
});
