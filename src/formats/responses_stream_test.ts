import OpenAI from "openai";
import { ollamaToSse } from "../../adapters/ollama_stream.ts";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { responsesEventInfo } from "./responses_events.ts";
import type { ResponseContext } from "./responses_response.ts";
import { chatSseToResponses } from "./responses_stream.ts";

type Json = Record<string, unknown>;

const CTX: ResponseContext = {
  id: "resp_r1",
  createdAt: 1_700_000_000,
  model: "m",
  request: { model: "m", input: "Hi", instructions: "Be brief" },
};
const encoder = new TextEncoder();
const BASE = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "up" };

function delta(delta: Json, finish: string | null = null): Json {
  return { ...BASE, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
}

const USAGE_CHUNK = {
  ...BASE,
  choices: [],
  usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 },
};

/** A chat stream with text (multi-byte characters), then two streamed tool calls. */
const TOOL_CHAT = [
  delta({ role: "assistant", content: "" }),
  delta({ content: "Ça " }),
  delta({ content: "va 🙂" }),
  delta({
    tool_calls: [{
      index: 0,
      id: "call_x",
      type: "function",
      function: { name: "weather", arguments: "" },
    }],
  }),
  delta({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  delta({ tool_calls: [{ index: 0, function: { arguments: '"Zürich"}' } }] }),
  delta({ tool_calls: [{ index: 1, id: "call_y", function: { name: "time", arguments: "{}" } }] }),
  delta({}, "tool_calls"),
  USAGE_CHUNK,
];

function sse(chunks: unknown[], done = true): string {
  return chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") +
    (done ? "data: [DONE]\n\n" : "");
}

function translated(pieces: (string | Uint8Array)[], ctx = CTX): ReadableStream<Uint8Array> {
  return ReadableStream.from(pieces.map((p) => typeof p === "string" ? encoder.encode(p) : p))
    .pipeThrough(chatSseToResponses(ctx));
}

async function convert(bytes: Uint8Array, cuts: number[]): Promise<string> {
  const edges = [0, ...cuts, bytes.length];
  const pieces = edges.slice(1).map((end, i) => bytes.slice(edges[i], end));
  return await new Response(translated(pieces)).text();
}

interface Event {
  name: string;
  data: Json;
  raw: string;
}

/** Splits the output into events, checking the framing of each. */
function parse(text: string): Event[] {
  assert(text.endsWith("\n\n"), "the output ends with a complete event");
  return text.slice(0, -2).split("\n\n").map((block) => {
    const [eventLine, dataLine, ...rest] = block.split("\n");
    assertEquals(rest, [], block);
    assert(eventLine.startsWith("event: ") && dataLine.startsWith("data: "), block);
    const data = JSON.parse(dataLine.slice(6));
    assertEquals(eventLine.slice(7), data.type, "the event line names the event's type");
    return { name: data.type, data, raw: dataLine.slice(6) };
  });
}

async function events(chunks: unknown[], done = true): Promise<Event[]> {
  return parse(await new Response(translated([sse(chunks, done)])).text());
}

Deno.test("chatSseToResponses() gives byte-identical output wherever the chat stream is cut", async () => {
  const bytes = encoder.encode(sse(TOOL_CHAT));
  const whole = await convert(bytes, []);
  for (let cut = 1; cut < bytes.length; cut++) {
    assertEquals(await convert(bytes, [cut]), whole, `cut at byte ${cut}`);
  }
  const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
  assertEquals(await convert(bytes, everyByte), whole, "cut at every byte");
  const crlf = encoder.encode(sse(TOOL_CHAT).replaceAll("\n", "\r\n"));
  assertEquals(await convert(crlf, []), whole, "CRLF line ends");
});

Deno.test("chatSseToResponses() writes OpenAI's event sequence for text and tool calls", async () => {
  const out = await events(TOOL_CHAT);
  assertEquals(out.map((e) => e.data.sequence_number), out.map((_, i) => i));
  assertEquals(out.map((e) => e.name), [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.delta",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
  ]);
  const created = out[0].data.response as Json;
  assertEquals([created.id, created.status, created.output, created.usage], [
    "resp_r1",
    "in_progress",
    [],
    null,
  ]);
  assertEquals(created.instructions, "Be brief");
  assertEquals(out.slice(4, 6).map((e) => e.data.delta), ["Ça ", "va 🙂"]);
  assertEquals(out[6].data.text, "Ça va 🙂");
  assertEquals(out[9].data.item, {
    id: "fc_r1_1",
    type: "function_call",
    status: "in_progress",
    call_id: "call_x",
    name: "weather",
    arguments: "",
  });
  assertEquals(out[14].data.arguments, '{"city":"Zürich"}');
  const completed = out.at(-1)!.data.response as Json;
  assertEquals(completed.status, "completed");
  assertEquals(completed.usage, {
    input_tokens: 9,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 5,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 14,
  });
  const items = completed.output as Json[];
  assertEquals(items.map((item) => [item.type, item.id, item.status]), [
    ["message", "msg_r1_0", "completed"],
    ["function_call", "fc_r1_1", "completed"],
    ["function_call", "fc_r1_2", "completed"],
  ]);
  assertEquals(items[2].arguments, "{}");
  // The meter reads the translation as it reads OpenAI's own stream.
  const infos = out.map((e) => responsesEventInfo(e.raw));
  assertEquals(infos.filter((i) => i.output).length, 5);
  assertEquals(infos.filter((i) => i.end).length, 1);
  assertEquals(infos.at(-1), {
    output: false,
    usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 },
    end: true,
    error: false,
  });
});

Deno.test("chatSseToResponses() sends each delta as soon as its chat chunk arrives", async () => {
  const transform = chatSseToResponses(CTX);
  const writer = transform.writable.getWriter();
  const reader = transform.readable.getReader();
  const decoder = new TextDecoder();
  const next = async () => parse(decoder.decode((await reader.read()).value));
  assertEquals((await next()).map((e) => e.name), ["response.created", "response.in_progress"]);
  // A write settles once the transform took the chunk, which it does when the reader asks.
  const first = writer.write(encoder.encode(sse([delta({ content: "first" })], false)));
  assertEquals((await next()).at(-1)!.data.delta, "first");
  await first;
  const second = writer.write(encoder.encode(sse([delta({ content: "second" })], false)));
  assertEquals((await next()).map((e) => [e.name, e.data.delta]), [
    ["response.output_text.delta", "second"],
  ]);
  await second;
  await writer.close();
  assertEquals((await reader.read()).done, true);
});

Deno.test("chatSseToResponses() reports a cut by max_tokens as response.incomplete", async () => {
  const out = await events([delta({ content: "Once" }, "length"), USAGE_CHUNK]);
  const last = out.at(-1)!;
  assertEquals(last.name, "response.incomplete");
  const response = last.data.response as Json;
  assertEquals(response.status, "incomplete");
  assertEquals(response.incomplete_details, { reason: "max_output_tokens" });
  assertEquals((response.output as Json[])[0].status, "incomplete");
  assertEquals(responsesEventInfo(last.raw).end, true);
});

Deno.test("chatSseToResponses() completes with usage null when the backend sent none that is sane", async () => {
  for (const usage of [undefined, { prompt_tokens: -1, completion_tokens: 1 }, "x"]) {
    const chunks = [delta({ content: "Hi" }, "stop"), { ...BASE, choices: [], usage }];
    const last = (await events(chunks)).at(-1)!;
    assertEquals(last.name, "response.completed");
    assertEquals((last.data.response as Json).usage, null);
    assertEquals(responsesEventInfo(last.raw).usage, null);
  }
});

Deno.test("chatSseToResponses() gives an empty answer one empty message", async () => {
  const out = await events([delta({}, "stop")]);
  const response = out.at(-1)!.data.response as Json;
  assertEquals(response.output, [{
    id: "msg_r1_0",
    type: "message",
    status: "completed",
    role: "assistant",
    content: [{ type: "output_text", text: "", annotations: [], logprobs: [] }],
  }]);
  // [DONE] without a finish reason closes the items all the same.
  const unfinished = await events([delta({ content: "Hi" })]);
  assertEquals(unfinished.at(-1)!.name, "response.completed");
});

Deno.test("chatSseToResponses() turns a chat error event into one generic error event", async () => {
  const failures = [
    { error: { message: "CUDA out of memory at /srv/secret", type: "server_error" } },
    { object: "error", message: "vLLM engine dead", type: "InternalServerError", code: 500 },
  ];
  for (const failure of failures) {
    const out = await events([delta({ content: "Hi" }), failure, delta({ content: "more" })]);
    const last = out.at(-1)!;
    assertEquals(last.name, "error");
    assertEquals(last.data, {
      type: "error",
      sequence_number: out.length - 1,
      error: {
        type: "api_error",
        code: "upstream_error",
        message: "The backend failed before the response was complete",
        param: null,
      },
    });
    assertEquals(out.filter((e) => e.name === "response.output_text.delta").length, 1);
    assertEquals(responsesEventInfo(last.raw).error, true);
  }
});

Deno.test("chatSseToResponses() adds nothing when the chat stream ends without [DONE]", async () => {
  const out = await events([delta({ content: "Hi" }, "stop"), USAGE_CHUNK], false);
  assertEquals(out.at(-1)!.name, "response.output_item.done");
  assert(out.every((e) => !responsesEventInfo(e.raw).end && !responsesEventInfo(e.raw).error));
});

Deno.test("chatSseToResponses() errors on a chat event that is not JSON", async () => {
  await assertRejects(
    () => new Response(translated(["data: {not json\n\n"])).text(),
    Error,
    "not JSON",
  );
});

Deno.test("chatSseToResponses() tells index-less calls apart by id and opens a new message for late text", async () => {
  const chunks = [
    delta({ tool_calls: [{ id: "a", function: { name: "f", arguments: '{"x":' } }] }),
    delta({ tool_calls: [{ function: { arguments: "1}" } }] }),
    delta({ tool_calls: [{ id: "b", function: { name: "g", arguments: { y: 2 } } }] }),
    delta({ content: "Done." }),
    delta({}, "tool_calls"),
  ];
  const out = await events(chunks);
  const response = out.at(-1)!.data.response as Json;
  assertEquals(
    (response.output as Json[]).map((item) => [item.id, item.call_id, item.arguments]),
    [["fc_r1_0", "a", '{"x":1}'], ["fc_r1_1", "b", '{"y":2}'], ["msg_r1_2", undefined, undefined]],
  );
  const client = sdkClient(() => translated([sse(chunks)]));
  const final = await client.responses.stream({ model: "m", input: "Hi" }).finalResponse();
  assertEquals(final.output_text, "Done.");
  assertEquals(final.output.map((item) => item.type), [
    "function_call",
    "function_call",
    "message",
  ]);
});

Deno.test("chatSseToResponses() translates what the Ollama adapter streams", async () => {
  const ndjson = [
    {
      model: "m",
      created_at: "2026-11-24T10:00:00Z",
      message: { role: "assistant", content: "Hé" },
      done: false,
    },
    {
      model: "m",
      created_at: "2026-11-24T10:00:00Z",
      message: {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "weather", arguments: { city: "Köln" } } }],
      },
      done: false,
    },
    {
      model: "m",
      message: { role: "assistant", content: "" },
      done: true,
      done_reason: "stop",
      prompt_eval_count: 4,
      eval_count: 6,
    },
  ].map((line) => JSON.stringify(line) + "\n").join("");
  const chat = ReadableStream.from([encoder.encode(ndjson)])
    .pipeThrough(ollamaToSse({ kind: "chat", requestId: "r1", model: "m", now: () => 0 }));
  const out = parse(await new Response(chat.pipeThrough(chatSseToResponses(CTX))).text());
  const response = out.at(-1)!.data.response as Json;
  assertEquals(response.status, "completed");
  assertEquals((response.usage as Json).total_tokens, 10);
  assertEquals(
    (response.output as Json[]).map((item) => [item.type, item.arguments ?? item.content]),
    [
      ["message", [{ type: "output_text", text: "Hé", annotations: [], logprobs: [] }]],
      ["function_call", '{"city":"Köln"}'],
    ],
  );
});

/** An openai SDK client whose requests are answered by `answer` (no network). */
function sdkClient(answer: () => ReadableStream<Uint8Array>): OpenAI {
  return new OpenAI({
    apiKey: "mg-test",
    baseURL: "http://gateway.invalid/v1",
    maxRetries: 0,
    fetch: async (_url, init) => {
      await new Response(init?.body).arrayBuffer();
      return new Response(answer(), { headers: { "content-type": "text/event-stream" } });
    },
  });
}

Deno.test("chatSseToResponses() output is accepted by the openai SDK's stream helper", async () => {
  const client = sdkClient(() => translated([sse(TOOL_CHAT)]));
  const stream = client.responses.stream({ model: "m", input: "Hi" });
  const deltas: string[] = [];
  stream.on("response.output_text.delta", (event) => deltas.push(event.delta));
  const final = await stream.finalResponse();
  assertEquals(deltas, ["Ça ", "va 🙂"]);
  assertEquals(final.output_text, "Ça va 🙂");
  assertEquals(final.status, "completed");
  assertEquals(final.usage?.total_tokens, 14);
  const calls = final.output.filter((item) => item.type === "function_call");
  assertEquals(calls.map((c) => [c.call_id, c.name, c.arguments]), [
    ["call_x", "weather", '{"city":"Zürich"}'],
    ["call_y", "time", "{}"],
  ]);
  const plain = await client.responses.create({ model: "m", input: "Hi", stream: true });
  const types: string[] = [];
  for await (const event of plain) types.push(event.type);
  assertEquals(types.at(-1), "response.completed");
});

Deno.test("chatSseToResponses() makes the openai SDK throw on a backend failure", async () => {
  const client = sdkClient(() =>
    translated([sse([delta({ content: "Hi" }), { error: { message: "boom" } }], false)])
  );
  const stream = await client.responses.create({ model: "m", input: "Hi", stream: true });
  const err = await assertRejects(async () => {
    for await (const _ of stream) { /* consume */ }
  }, OpenAI.APIError);
  assertEquals(err.code, "upstream_error");
  assertEquals(err.message, "The backend failed before the response was complete");
  await assertRejects(
    () => client.responses.stream({ model: "m", input: "Hi" }).finalResponse(),
    OpenAI.APIError,
  );
});
