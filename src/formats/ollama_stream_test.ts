import { assert, assertEquals } from "../../tests/assert.ts";
import { OLLAMA_STREAM_FAILED } from "./ollama_events.ts";
import type { OllamaContext } from "./ollama_response.ts";
import { chatSseToOllama, MAX_TOOL_CALL_CHARS, MAX_TOOL_CALLS } from "./ollama_stream.ts";

type Json = Record<string, unknown>;

const encoder = new TextEncoder();
const STARTED = Date.parse("2026-11-24T10:00:00.000Z");
const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "upstream" };

function sse(events: (Json | string)[]): string {
  return events.map((e) =>
    `data: ${typeof e === "string" ? e : JSON.stringify({ ...base, ...e })}\n\n`
  )
    .join("");
}
const delta = (d: Json, finish: string | null = null): Json => ({
  choices: [{ index: 0, delta: d, finish_reason: finish }],
});
const usage = (prompt: unknown, completion: unknown): Json => ({
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: 99 },
});

const ctx = (extra: Partial<OllamaContext> = {}): OllamaContext => ({
  model: "my-alias",
  now: () => STARTED + 2000,
  startedAt: STARTED,
  ...extra,
});

/** Runs bytes cut at the given offsets through the transform and returns the output text. */
async function convert(
  text: string,
  cuts: number[] = [],
  kind: "chat" | "generate" = "chat",
  context: OllamaContext = ctx(),
): Promise<string> {
  const bytes = encoder.encode(text);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(start, cut));
    start = cut;
  }
  const stream = ReadableStream.from(pieces).pipeThrough(chatSseToOllama(kind, context));
  return await new Response(stream).text();
}

const lines = (text: string): Json[] =>
  text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));

/** A chat stream with everything: reasoning, multi-byte text, a tool call in pieces, usage. */
const FULL = ": keep-alive\n\n" + sse([
  delta({ role: "assistant", content: "" }),
  delta({ reasoning_content: "Café ☕ first" }),
  delta({ content: "Ça va 🙂" }),
  delta({
    tool_calls: [{
      index: 0,
      id: "call_1",
      type: "function",
      function: { name: "get_weather", arguments: "" },
    }],
  }),
  delta({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  delta({ tool_calls: [{ index: 1, id: "call_2", function: { name: "now", arguments: "{}" } }] }),
  delta({ tool_calls: [{ index: 0, function: { arguments: '"Zürich"}' } }] }),
  delta({}, "tool_calls"),
  usage(21, 9),
  "[DONE]",
]);

Deno.test("chatSseToOllama() turns a chat stream into Ollama's lines", async () => {
  const out = lines(await convert(FULL));
  const head = { model: "my-alias", created_at: "2026-11-24T10:00:02.000Z" };
  assertEquals(out, [
    {
      ...head,
      message: { role: "assistant", content: "", thinking: "Café ☕ first" },
      done: false,
    },
    { ...head, message: { role: "assistant", content: "Ça va 🙂" }, done: false },
    {
      ...head,
      message: {
        role: "assistant",
        content: "",
        tool_calls: [
          {
            id: "call_1",
            function: { index: 0, name: "get_weather", arguments: { city: "Zürich" } },
          },
          { id: "call_2", function: { index: 1, name: "now", arguments: {} } },
        ],
      },
      done: false,
    },
    {
      ...head,
      message: { role: "assistant", content: "" },
      done: true,
      done_reason: "stop",
      total_duration: 2_000_000_000,
      load_duration: 0,
      prompt_eval_count: 21,
      prompt_eval_duration: 2_000_000_000,
      eval_count: 9,
      eval_duration: 0,
    },
  ]);
});

Deno.test("chatSseToOllama() gives byte-identical output wherever the SSE is cut", async () => {
  const whole = await convert(FULL);
  const length = encoder.encode(FULL).length;
  for (let cut = 1; cut < length; cut++) {
    assertEquals(await convert(FULL, [cut]), whole, `cut at byte ${cut}`);
  }
  const everyByte = Array.from({ length: length - 1 }, (_, i) => i + 1);
  assertEquals(await convert(FULL, everyByte), whole, "one byte at a time");
  assertEquals(await convert(FULL.replaceAll("\n", "\r\n")), whole, "CRLF line ends");
});

Deno.test("chatSseToOllama() streams generate answers as response lines", async () => {
  const text = sse([
    delta({ role: "assistant", content: "" }),
    delta({ content: "Bon" }),
    delta({ reasoning: "short" }),
    delta({ content: "jour" }, "length"),
    usage(3, 2),
    "[DONE]",
  ]);
  const out = lines(await convert(text, [], "generate"));
  assertEquals(out.map((l) => [l.response, l.thinking, l.done]), [
    ["Bon", undefined, false],
    ["", "short", false],
    ["jour", undefined, false],
    ["", undefined, true],
  ]);
  const final = out[3];
  assertEquals(final.done_reason, "length");
  assertEquals([final.prompt_eval_count, final.eval_count], [3, 2]);
  assertEquals("message" in final, false);
});

Deno.test("chatSseToOllama() measures durations from the context's clock", async () => {
  let now = STARTED;
  const transform = chatSseToOllama("chat", ctx({ now: () => now }));
  const output = new Response(transform.readable).text();
  const writer = transform.writable.getWriter();
  now = STARTED + 300;
  await writer.write(encoder.encode(sse([delta({ role: "assistant", content: "" })])));
  now = STARTED + 1200;
  await writer.write(encoder.encode(sse([delta({ content: "Hi" })])));
  now = STARTED + 5000;
  await writer.write(encoder.encode(sse([delta({}, "stop"), usage(4, 1), "[DONE]"])));
  await writer.close();
  const final = lines(await output).at(-1)!;
  assertEquals(final.total_duration, 5_000_000_000);
  assertEquals(final.prompt_eval_duration, 1_200_000_000);
  assertEquals(final.eval_duration, 3_800_000_000);
  assertEquals(final.created_at, "2026-11-24T10:00:05.000Z");
});

Deno.test("chatSseToOllama() leaves out counts the backend did not report or made up", async () => {
  for (const tail of [[], [usage(-1, 5)], [usage(3, "7")], [usage(1e12, 1)]]) {
    const out = lines(await convert(sse([delta({ content: "Hi" }, "stop"), ...tail, "[DONE]"])));
    const final = out.at(-1)!;
    assertEquals(final.done, true);
    assertEquals("prompt_eval_count" in final, false, JSON.stringify(tail));
    assertEquals("eval_count" in final, false, JSON.stringify(tail));
  }
});

Deno.test("chatSseToOllama() drops reasoning when the client sent think:false", async () => {
  const text = sse([
    delta({ reasoning_content: "secret" }),
    delta({ content: "4", reasoning_content: "more" }),
    "[DONE]",
  ]);
  const out = lines(await convert(text, [], "chat", ctx({ hideThinking: true })));
  assertEquals(out.map((l) => l.message), [
    { role: "assistant", content: "4" },
    { role: "assistant", content: "" },
  ]);
});

Deno.test("chatSseToOllama() turns an error event into one generic error line and stops", async () => {
  let cancelled = false;
  const bytes = encoder.encode(sse([
    delta({ content: "Hi" }),
    { error: { message: "CUDA out of memory at 0x7f", type: "server_error" } },
    delta({ content: "never" }),
    "[DONE]",
  ]));
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
    },
    cancel() {
      cancelled = true;
    },
  });
  const text = await new Response(source.pipeThrough(chatSseToOllama("chat", ctx()))).text();
  const out = lines(text);
  assertEquals(out.length, 2);
  assertEquals((out[0].message as Json).content, "Hi");
  assertEquals(out[1], { error: OLLAMA_STREAM_FAILED });
  assert(!text.includes("CUDA"));
  assert(cancelled, "the upstream is cancelled after the error");
});

Deno.test("chatSseToOllama() treats a data line that is not JSON as a failure", async () => {
  const out = lines(await convert(sse([delta({ content: "Hi" }), "{not json", "[DONE]"])));
  assertEquals(out.at(-1), { error: OLLAMA_STREAM_FAILED });
  assertEquals(out.length, 2);
});

Deno.test("chatSseToOllama() adds nothing to a stream cut before [DONE]", async () => {
  const cut = sse([
    delta({ content: "Hi" }),
    delta({ tool_calls: [{ index: 0, function: { name: "f" } }] }),
  ]);
  const out = lines(await convert(cut));
  assertEquals(out.length, 1);
  assertEquals(out[0].done, false);
  const noBlankLine = sse([delta({ content: "Hi" })]) + "data: [DONE]";
  assertEquals(lines(await convert(noBlankLine)).at(-1)!.done, true);
});

Deno.test("chatSseToOllama() fails a stream with more tool calls than it may gather", async () => {
  const calls = Array.from(
    { length: MAX_TOOL_CALLS + 1 },
    (_, index) =>
      delta({ tool_calls: [{ index, id: `c${index}`, function: { name: "f", arguments: "{}" } }] }),
  );
  const out = lines(await convert(sse([...calls, delta({}, "tool_calls"), "[DONE]"])));
  assertEquals(out, [{ error: OLLAMA_STREAM_FAILED }]);
  const fewer = lines(await convert(sse([...calls.slice(1), delta({}, "tool_calls"), "[DONE]"])));
  const toolCalls = (fewer[0].message as Json).tool_calls as Json[];
  assertEquals(toolCalls.length, MAX_TOOL_CALLS);
});

Deno.test("chatSseToOllama() fails a stream whose tool-call arguments pass the bound", async () => {
  const piece = "x".repeat(1024 * 1024);
  const pieces = Math.ceil(MAX_TOOL_CALL_CHARS / piece.length);
  // A named call, then one piece more than the bound allows.
  const calls = Array.from({ length: pieces + 2 }, (_, i) => {
    const args = i === 0 ? "" : piece;
    return delta({ tool_calls: [{ index: 0, function: { name: "f", arguments: args } }] });
  });
  const over = lines(await convert(sse([delta({ content: "Hi" }), ...calls, "[DONE]"])));
  assertEquals(out(over), ["Hi", OLLAMA_STREAM_FAILED]);
  const under = lines(
    await convert(sse([...calls.slice(0, pieces + 1), delta({}, "stop"), "[DONE]"])),
  );
  assertEquals(under.length, 2);
  assertEquals(under[1].done, true);
});

/** Each line's text, or its error. */
function out(parsed: Json[]): unknown[] {
  return parsed.map((line) => line.error ?? (line.message as Json).content);
}

Deno.test("chatSseToOllama() sends no tool calls in generate answers", async () => {
  const text = sse([
    delta({ tool_calls: [{ index: 0, function: { name: "f", arguments: "{}" } }] }),
    delta({}, "tool_calls"),
    "[DONE]",
  ]);
  const out = lines(await convert(text, [], "generate"));
  assertEquals(out.length, 1);
  assertEquals(out[0].done, true);
});
