import { assert, assertEquals } from "../../tests/assert.ts";
import { responsesErrorEvent, responsesEventInfo } from "./responses_events.ts";
import { PLAIN_EVENT } from "./types.ts";

const PLAIN = { ...PLAIN_EVENT };
const OUTPUT = { ...PLAIN, output: true };
const ERROR = { ...PLAIN, error: true };

function response(status: string, usage: unknown): Record<string, unknown> {
  return { id: "resp_1", object: "response", status, output: [], usage };
}

const USAGE = {
  input_tokens: 36,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 87,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 1,
};

/** Events as OpenAI's own Responses API streams them, and what each tells the meter. */
const EVENTS: [string, unknown][] = [
  [
    JSON.stringify({
      type: "response.created",
      sequence_number: 0,
      response: response("in_progress", null),
    }),
    PLAIN,
  ],
  [
    JSON.stringify({
      type: "response.output_item.added",
      sequence_number: 2,
      output_index: 0,
      item: { id: "msg_1", type: "message", status: "in_progress", role: "assistant", content: [] },
    }),
    PLAIN,
  ],
  [
    JSON.stringify({
      type: "response.output_text.delta",
      sequence_number: 4,
      item_id: "msg_1",
      output_index: 0,
      content_index: 0,
      delta: 'He said "type":"response.completed"',
      logprobs: [],
    }),
    OUTPUT,
  ],
  [
    '{ "type" : "response.function_call_arguments.delta", "sequence_number": 5, "delta": "{" }',
    OUTPUT,
  ],
  [JSON.stringify({ type: "response.reasoning_summary_text.delta", delta: "x" }), OUTPUT],
  [JSON.stringify({ type: "response.output_text.done", text: "Hi" }), PLAIN],
  [
    JSON.stringify({
      type: "response.completed",
      sequence_number: 9,
      response: response("completed", USAGE),
    }),
    { ...PLAIN, end: true, usage: { prompt_tokens: 36, completion_tokens: 87, total_tokens: 123 } },
  ],
  [
    // `type` not first: read by parsing.
    JSON.stringify({
      sequence_number: 9,
      response: response("incomplete", USAGE),
      type: "response.incomplete",
    }),
    { ...PLAIN, end: true, usage: { prompt_tokens: 36, completion_tokens: 87, total_tokens: 123 } },
  ],
  [
    JSON.stringify({
      type: "response.completed",
      response: response("completed", { input_tokens: -3, output_tokens: 2 }),
    }),
    { ...PLAIN, end: true },
  ],
  [JSON.stringify({ type: "response.completed", response: null }), { ...PLAIN, end: true }],
  [JSON.stringify({ type: "response.completed" }), { ...PLAIN, end: true }],
  [
    JSON.stringify({
      type: "response.failed",
      sequence_number: 7,
      response: { ...response("failed", null), error: { code: "server_error", message: "x" } },
    }),
    ERROR,
  ],
  [
    JSON.stringify({ type: "response.failed", response: response("failed", USAGE) }),
    { ...ERROR, usage: { prompt_tokens: 36, completion_tokens: 87, total_tokens: 123 } },
  ],
  [
    JSON.stringify({
      type: "error",
      sequence_number: 3,
      error: {
        type: "invalid_request_error",
        code: "context_length_exceeded",
        message: "x",
        param: "input",
      },
    }),
    ERROR,
  ],
  [
    JSON.stringify({
      type: "error",
      code: "server_error",
      message: "x",
      param: null,
      sequence_number: 1,
    }),
    ERROR,
  ],
  [
    JSON.stringify({
      error: { message: "x", type: "api_error", param: null, code: "upstream_error" },
    }),
    ERROR,
  ],
  [JSON.stringify({ type: "keepalive", sequence_number: 4 }), PLAIN],
  ["[DONE]", PLAIN],
  ["", PLAIN],
  ["not json", PLAIN],
  ["null", PLAIN],
  ["[1,2]", PLAIN],
  ['{"type":5}', PLAIN],
  ['{"error":null}', PLAIN],
];

Deno.test("responsesEventInfo() reads output, usage, end and failure from each event", () => {
  for (const [data, info] of EVENTS) {
    assertEquals(responsesEventInfo(data), info, data);
  }
});

Deno.test("responsesErrorEvent() writes one SSE event with a nested error no value can split", () => {
  const text = new TextDecoder().decode(
    responsesErrorEvent("upstream_timeout", "Line one\r\nevent: injected", 12),
  );
  assert(text.endsWith("\n\n"), text);
  const lines = text.slice(0, -2).split("\n");
  assertEquals(lines.length, 2, text);
  assertEquals(lines[0], "event: error");
  assert(lines[1].startsWith("data: "), text);
  const data = JSON.parse(lines[1].slice(6));
  assertEquals(data, {
    type: "error",
    sequence_number: 12,
    error: {
      type: "api_error",
      code: "upstream_timeout",
      message: "Line one\r\nevent: injected",
      param: null,
    },
  });
  assertEquals(responsesEventInfo(lines[1].slice(6)), ERROR);
  const unnumbered = new TextDecoder().decode(responsesErrorEvent("upstream_error", "x"));
  assertEquals(JSON.parse(unnumbered.split("\n")[1].slice(6)).sequence_number, 0);
});
