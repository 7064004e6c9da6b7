import { assertEquals } from "../../tests/assert.ts";
import {
  chatToOllamaChat,
  chatToOllamaGenerate,
  embeddingsToOllamaEmbed,
  embeddingsToOllamaLegacy,
  finalFields,
  type OllamaContext,
} from "./ollama_response.ts";

const STARTED = Date.parse("2026-11-24T10:00:00.000Z");
/** A context whose clock reads 1.5 s after the request started. */
const ctx = (extra: Partial<OllamaContext> = {}): OllamaContext => ({
  model: "my-alias",
  now: () => STARTED + 1500,
  startedAt: STARTED,
  ...extra,
});

const completion = (message: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "upstream-name",
  choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
  ...extra,
});

Deno.test("chatToOllamaChat() answers as Ollama: client's model name, counts, durations in ns", () => {
  const answer = chatToOllamaChat(completion({ content: "Bonjour" }), ctx());
  assertEquals(answer, {
    model: "my-alias",
    created_at: "2026-11-24T10:00:01.500Z",
    message: { role: "assistant", content: "Bonjour" },
    done: true,
    done_reason: "stop",
    total_duration: 1_500_000_000,
    load_duration: 0,
    prompt_eval_count: 12,
    prompt_eval_duration: 0,
    eval_count: 5,
    eval_duration: 1_500_000_000,
  });
});

Deno.test("chatToOllamaChat() returns reasoning as thinking unless think was false", () => {
  const vllm = completion({ content: "4", reasoning_content: "2+2" });
  assertEquals((chatToOllamaChat(vllm, ctx()).message as Record<string, unknown>).thinking, "2+2");
  const other = completion({ content: "4", reasoning: "two plus two" });
  assertEquals(
    (chatToOllamaChat(other, ctx()).message as Record<string, unknown>).thinking,
    "two plus two",
  );
  const hidden = chatToOllamaChat(vllm, ctx({ hideThinking: true }));
  assertEquals(hidden.message, { role: "assistant", content: "4" });
});

Deno.test("chatToOllamaChat() gives tool calls object arguments, ids and indexes", () => {
  const toolCalls = [
    { id: "call_a", type: "function", function: { name: "f", arguments: '{"x":1}' } },
    { id: "call_b", type: "function", function: { name: "g", arguments: '{"cut' } },
    { type: "function", function: { name: "h", arguments: "[1]" } },
  ];
  const answer = chatToOllamaChat(
    completion({}, {
      choices: [{
        index: 0,
        message: { role: "assistant", content: null, tool_calls: toolCalls },
        finish_reason: "tool_calls",
      }],
    }),
    ctx(),
  );
  assertEquals(answer.done_reason, "stop");
  assertEquals(answer.message, {
    role: "assistant",
    content: "",
    tool_calls: [
      { id: "call_a", function: { index: 0, name: "f", arguments: { x: 1 } } },
      { id: "call_b", function: { index: 1, name: "g", arguments: {} } },
      { function: { index: 2, name: "h", arguments: {} } },
    ],
  });
});

Deno.test("chatToOllamaChat() maps finish reasons and leaves out counts it cannot trust", () => {
  const cut = chatToOllamaChat(
    completion({ content: "Bon" }, {
      choices: [{ index: 0, message: { content: "Bon" }, finish_reason: "length" }],
      usage: { prompt_tokens: -3, completion_tokens: 1 },
    }),
    ctx(),
  );
  assertEquals(cut.done_reason, "length");
  assertEquals("prompt_eval_count" in cut, false);
  assertEquals("eval_count" in cut, false);
  const filtered = chatToOllamaChat(
    completion({}, { choices: [{ index: 0, message: {}, finish_reason: "content_filter" }] }),
    ctx(),
  );
  assertEquals(filtered.done_reason, "stop");
  const empty = chatToOllamaChat({}, ctx());
  assertEquals(empty.message, { role: "assistant", content: "" });
  assertEquals(empty.done, true);
  assertEquals("eval_count" in empty, false);
});

Deno.test("chatToOllamaChat() never reports NaN or negative durations", () => {
  const broken = [() => NaN, () => STARTED - 5000, () => Infinity];
  for (const now of broken) {
    const answer = chatToOllamaChat(completion({ content: "x" }), ctx({ now }));
    for (const field of ["total_duration", "prompt_eval_duration", "eval_duration"]) {
      const value = answer[field] as number;
      assertEquals(Number.isSafeInteger(value) && value >= 0, true, `${field}: ${value}`);
    }
    assertEquals(typeof answer.created_at, "string");
  }
});

Deno.test("chatToOllamaGenerate() answers with response and thinking at the top level", () => {
  const answer = chatToOllamaGenerate(
    completion({
      content: [{ type: "text", text: "Bon" }, { type: "text", text: "jour" }],
      reasoning_content: "r",
    }),
    ctx(),
  );
  assertEquals(answer.response, "Bonjour");
  assertEquals(answer.thinking, "r");
  assertEquals(answer.model, "my-alias");
  assertEquals(answer.prompt_eval_count, 12);
  assertEquals("context" in answer, false);
  assertEquals("message" in answer, false);
});

Deno.test("embeddingsToOllamaEmbed() orders vectors by index and reports prompt tokens", () => {
  const openai = {
    object: "list",
    data: [
      { object: "embedding", index: 1, embedding: [0.3, 0.4] },
      { object: "embedding", index: 0, embedding: [0.1, 0.2] },
    ],
    model: "upstream",
    usage: { prompt_tokens: 8, total_tokens: 8 },
  };
  assertEquals(embeddingsToOllamaEmbed(openai, ctx()), {
    model: "my-alias",
    embeddings: [[0.1, 0.2], [0.3, 0.4]],
    total_duration: 1_500_000_000,
    load_duration: 0,
    prompt_eval_count: 8,
  });
  const noUsage = embeddingsToOllamaEmbed({ data: [{ embedding: "base64?" }] }, ctx());
  assertEquals(noUsage.embeddings, [[]]);
  assertEquals("prompt_eval_count" in noUsage, false);
  assertEquals(embeddingsToOllamaLegacy(openai), { embedding: [0.1, 0.2] });
  assertEquals(embeddingsToOllamaLegacy({ data: "x" }), { embedding: [] });
});

Deno.test("finalFields() splits a streamed answer's time at its first output", () => {
  const fields = finalFields("stop", { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, {
    startedAt: 1000,
    firstOutputAt: 1250.5,
    endedAt: 3000,
  });
  assertEquals(fields, {
    done: true,
    done_reason: "stop",
    total_duration: 2_000_000_000,
    load_duration: 0,
    prompt_eval_count: 3,
    prompt_eval_duration: 250_500_000,
    eval_count: 4,
    eval_duration: 1_749_500_000,
  });
});
