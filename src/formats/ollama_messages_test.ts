import { assertEquals } from "../../tests/assert.ts";
import { sniffImageType, toChatMessages } from "./ollama_messages.ts";

const b64 = (bytes: number[] | string) =>
  btoa(typeof bytes === "string" ? bytes : String.fromCharCode(...bytes));

Deno.test("sniffImageType() reads the type from magic bytes, PNG otherwise", () => {
  const cases: [string, string][] = [
    [b64([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), "image/png"],
    [b64([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46]), "image/jpeg"],
    [b64("GIF89a\x01\x00\x01\x00"), "image/gif"],
    [b64("GIF87a\x01\x00\x01\x00"), "image/gif"],
    [b64("RIFF\x24\x00\x00\x00WEBPVP8 "), "image/webp"],
    [b64("RIFF\x24\x00\x00\x00WAVEfmt "), "image/png"],
    [b64("BM\x36\x00\x00\x00"), "image/bmp"],
    [b64("hello world"), "image/png"],
    [b64([0xff]), "image/png"],
  ];
  for (const [image, type] of cases) assertEquals(sniffImageType(image), type, image);
});

Deno.test("toChatMessages() puts user images as data: URL parts after the text", () => {
  const jpeg = b64([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49]);
  const { messages, nativeOnly } = toChatMessages([
    { role: "user", content: "Compare", images: [jpeg, b64("GIF89a\x01\x00")] },
    { role: "user", images: [jpeg] },
  ]);
  assertEquals(nativeOnly, null);
  assertEquals(messages, [
    {
      role: "user",
      content: [
        { type: "text", text: "Compare" },
        { type: "image_url", image_url: { url: `data:image/jpeg;base64,${jpeg}` } },
        { type: "image_url", image_url: { url: `data:image/gif;base64,${b64("GIF89a\x01\x00")}` } },
      ],
    },
    {
      role: "user",
      content: [{ type: "image_url", image_url: { url: `data:image/jpeg;base64,${jpeg}` } }],
    },
  ]);
});

Deno.test("toChatMessages() leaves images outside user messages to Ollama backends", () => {
  const { nativeOnly } = toChatMessages([
    { role: "user", content: "Hi" },
    { role: "assistant", content: "See", images: [b64("GIF89a\x01\x00")] },
  ]);
  assertEquals(nativeOnly?.param, "messages[1].images");
  assertEquals(nativeOnly?.code, "unsupported_parameter");
});

Deno.test("toChatMessages() gives tool calls ids and JSON-string arguments", () => {
  const { messages } = toChatMessages([
    { role: "user", content: "Weather?" },
    {
      role: "Assistant",
      content: "",
      thinking: "Two cities",
      tool_calls: [
        { function: { name: "get_weather", arguments: { city: "Paris", days: [1, 2] } } },
        { id: "call_x", function: { name: "get_time", arguments: '{"zone":"UTC"}' } },
        { function: { name: "now" } },
      ],
    },
  ]);
  assertEquals(messages[1], {
    role: "assistant",
    content: "",
    tool_calls: [
      {
        id: "call_1_0",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris","days":[1,2]}' },
      },
      {
        id: "call_x",
        type: "function",
        function: { name: "get_time", arguments: '{"zone":"UTC"}' },
      },
      { id: "call_1_2", type: "function", function: { name: "now", arguments: "{}" } },
    ],
  });
});

Deno.test("toChatMessages() links tool results to calls by id, by tool_name, then in order", () => {
  const { messages, nativeOnly } = toChatMessages([
    { role: "user", content: "Weather and time?" },
    {
      role: "assistant",
      tool_calls: [
        { function: { name: "get_weather", arguments: { city: "Paris" } } },
        { function: { name: "get_weather", arguments: { city: "Oslo" } } },
        { id: "t1", function: { name: "get_time" } },
        { function: { name: "get_moon" } },
      ],
    },
    { role: "tool", content: "12:00", tool_call_id: "t1" },
    { role: "tool", content: "11 degrees", tool_name: "get_weather" },
    { role: "tool", content: "3 degrees", tool_name: "get_weather" },
    { role: "tool", content: "full moon" },
  ]);
  assertEquals(nativeOnly, null);
  assertEquals(messages.slice(2), [
    { role: "tool", tool_call_id: "t1", content: "12:00" },
    { role: "tool", tool_call_id: "call_1_0", content: "11 degrees" },
    { role: "tool", tool_call_id: "call_1_1", content: "3 degrees" },
    { role: "tool", tool_call_id: "call_1_3", content: "full moon" },
  ]);
});

Deno.test("toChatMessages() leaves tool results without a matching call to Ollama backends", () => {
  const orphan = toChatMessages([
    { role: "user", content: "Hi" },
    { role: "tool", content: "11 degrees", tool_name: "get_weather" },
  ]);
  assertEquals(orphan.nativeOnly?.param, "messages[1].tool_name");
  const wrongName = toChatMessages([
    { role: "assistant", tool_calls: [{ function: { name: "get_time" } }] },
    { role: "tool", content: "11 degrees", tool_name: "get_weather" },
  ]);
  assertEquals(wrongName.nativeOnly?.param, "messages[1].tool_name");
  const answeredTwice = toChatMessages([
    { role: "assistant", tool_calls: [{ function: { name: "get_time" } }] },
    { role: "tool", content: "12:00" },
    { role: "tool", content: "12:00" },
  ]);
  assertEquals(answeredTwice.nativeOnly?.param, "messages[2].tool_name");
});

Deno.test("toChatMessages() answers many calls of one name in order", () => {
  const count = 5000;
  const calls = Array.from({ length: count }, (_, i) => ({
    function: { name: i % 2 ? "odd" : "even", arguments: { i } },
  }));
  const results = Array.from({ length: count }, (_, i) => ({
    role: "tool",
    content: String(i),
    tool_name: i < count / 2 ? "even" : "odd",
  }));
  const { messages, nativeOnly } = toChatMessages([
    { role: "assistant", tool_calls: calls },
    ...results,
  ]);
  assertEquals(nativeOnly, null);
  const ids = messages.slice(1).map((m) => m.tool_call_id);
  const even = Array.from({ length: count / 2 }, (_, k) => `call_0_${2 * k}`);
  const odd = Array.from({ length: count / 2 }, (_, k) => `call_0_${2 * k + 1}`);
  assertEquals(ids, [...even, ...odd]);
});
