import { assertEquals } from "../../tests/assert.ts";
import type { EventInfo, Inspector } from "./types.ts";
import { invalidRequest, modelNotFound, upstreamError } from "../errors.ts";
import {
  ollamaErrorBody,
  ollamaErrorLine,
  ollamaErrorOf,
  ollamaLineInfo,
} from "./ollama_events.ts";

const base = { model: "m", created_at: "2026-11-24T10:00:00Z" };
const line = (value: unknown) => JSON.stringify(value);
const info = (partial: Partial<EventInfo>): EventInfo => ({
  output: false,
  usage: null,
  end: false,
  error: false,
  ...partial,
});

Deno.test("ollamaLineInfo() reads output, the end with counts, and errors from one line", () => {
  const cases: [string, string, EventInfo][] = [
    [
      "chat text",
      line({ ...base, message: { role: "assistant", content: "Hi" }, done: false }),
      info({ output: true }),
    ],
    [
      "chat thinking",
      line({ ...base, message: { role: "assistant", content: "", thinking: "Hmm" }, done: false }),
      info({ output: true }),
    ],
    [
      "chat tool call",
      line({
        ...base,
        message: { role: "assistant", content: "", tool_calls: [{ function: { name: "f" } }] },
        done: false,
      }),
      info({ output: true }),
    ],
    [
      "chat empty delta",
      line({ ...base, message: { role: "assistant", content: "" }, done: false }),
      info({}),
    ],
    ["generate text", line({ ...base, response: "Hi", done: false }), info({ output: true })],
    ["generate thinking", line({ ...base, response: "", thinking: "Hmm" }), info({ output: true })],
    [
      "final line",
      line({
        ...base,
        message: { role: "assistant", content: "" },
        done: true,
        done_reason: "stop",
        prompt_eval_count: 26,
        eval_count: 282,
        eval_duration: 4535599000,
      }),
      info({ end: true, usage: { prompt_tokens: 26, completion_tokens: 282, total_tokens: 308 } }),
    ],
    [
      "final line with text",
      line({ ...base, response: "!", done: true, prompt_eval_count: 1, eval_count: 0 }),
      info({
        output: true,
        end: true,
        usage: { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 },
      }),
    ],
    ["final without counts", line({ ...base, done: true }), info({ end: true })],
    [
      // Ollama leaves the prompt count out when it reused a cached prompt.
      "final without prompt count",
      line({ ...base, done: true, eval_count: 5 }),
      info({ end: true, usage: { prompt_tokens: 0, completion_tokens: 5, total_tokens: 5 } }),
    ],
    [
      "negative count",
      line({ ...base, done: true, prompt_eval_count: -1, eval_count: 5 }),
      info({ end: true }),
    ],
    [
      "huge count",
      line({ ...base, done: true, prompt_eval_count: 1e12, eval_count: 5 }),
      info({ end: true }),
    ],
    [
      "fractional count",
      line({ ...base, done: true, prompt_eval_count: 2, eval_count: 1.5 }),
      info({ end: true }),
    ],
    [
      "text count",
      line({ ...base, done: true, prompt_eval_count: "2", eval_count: 1 }),
      info({ end: true }),
    ],
    ["done as text", line({ ...base, done: "true" }), info({})],
    [
      "error",
      line({ error: "an error was encountered while running the model" }),
      info({ error: true }),
    ],
    ["error object", line({ error: { message: "x" } }), info({ error: true })],
    ["null error", line({ ...base, error: null, response: "a" }), info({ output: true })],
    ["blank", "   ", info({})],
    ["not JSON", "data: {}", info({})],
    ["array", "[1,2]", info({})],
    ["number", "42", info({})],
    ["null", "null", info({})],
  ];
  // The meter's inspector of an Ollama stream can be ollamaLineInfo itself.
  const inspect: Inspector = ollamaLineInfo;
  for (const [name, text, expected] of cases) assertEquals(inspect(text), expected, name);
});

Deno.test("ollamaErrorLine() writes one escaped line that ollamaLineInfo() reads as an error", () => {
  const bytes = ollamaErrorLine('Bad "thing"\n{"done":true}\r\nend');
  const text = new TextDecoder().decode(bytes);
  assertEquals(text.indexOf("\n"), text.length - 1);
  assertEquals(JSON.parse(text), { error: 'Bad "thing"\n{"done":true}\r\nend' });
  assertEquals(ollamaLineInfo(text.trimEnd()).error, true);
  assertEquals(ollamaErrorBody("Model not found"), { error: "Model not found" });
});

Deno.test("ollamaErrorOf() names the field of a 400 in the text, as Ollama has no param", () => {
  assertEquals(
    ollamaErrorOf(invalidRequest("Field must be a number from 0 to 1", "options.top_p")),
    { error: 'Invalid "options.top_p": Field must be a number from 0 to 1' },
  );
  assertEquals(ollamaErrorOf(modelNotFound("qwen3")), {
    error: 'Model "qwen3" is not served by any backend',
  });
  assertEquals(ollamaErrorOf(upstreamError('Backend "a" is unreachable')), {
    error: 'Backend "a" is unreachable',
  });
});
