import { assertEquals } from "../../tests/assert.ts";
import { meterStream, type StreamSummary } from "./meter.ts";

const encoder = new TextEncoder();

function source(text: string, pieceSize: number): ReadableStream<Uint8Array> {
  const bytes = encoder.encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + pieceSize));
      offset += pieceSize;
    },
  });
}

async function run(text: string, stripUsage: boolean, pieceSize = 3) {
  let summary: StreamSummary | null = null;
  let clock = 0;
  const stream = meterStream(source(text, pieceSize), {
    stripUsage,
    idleMs: 1000,
    now: () => ++clock,
    startedAt: 0,
    onEnd: (s) => (summary = s),
  });
  const out = await new Response(stream).text();
  return { out, summary: summary! as StreamSummary };
}

const chunk = (content: string) =>
  `data: {"id":"c","choices":[{"index":0,"delta":{"content":"${content}"},"finish_reason":null}]}\n\n`;
const usageOnly =
  'data: {"id":"c","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n';

Deno.test("meterStream() learns usage and hides the usage-only chunk the client did not ask for", async () => {
  for (const size of [1, 2, 5, 64]) {
    const { out, summary } = await run(
      chunk("é") + chunk("🙂") + usageOnly + "data: [DONE]\n\n",
      true,
      size,
    );
    assertEquals(out, chunk("é") + chunk("🙂") + "data: [DONE]\n\n");
    assertEquals(summary.outcome, "completed");
    assertEquals(summary.usage, { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
    assertEquals(summary.choiceEvents, 2);
    assertEquals(summary.ttftMs, 1);
  }
});

Deno.test("meterStream() keeps the usage chunk when the client asked for it", async () => {
  const { out } = await run(chunk("a") + usageOnly + "data: [DONE]\n\n", false);
  assertEquals(out, chunk("a") + usageOnly + "data: [DONE]\n\n");
});

Deno.test("meterStream() removes a usage field riding on a choices chunk (llama.cpp style)", async () => {
  const last =
    'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n';
  const { out, summary } = await run(chunk("a") + last + "data: [DONE]\n\n", true);
  assertEquals(
    out,
    chunk("a") + 'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' +
      "data: [DONE]\n\n",
  );
  assertEquals(summary.usage?.total_tokens, 4);
});

Deno.test("meterStream() reports a stream that ends without [DONE] as an upstream error", async () => {
  const { out, summary } = await run(chunk("a"), true);
  assertEquals(summary.outcome, "upstream_error");
  assertEquals(summary.usage, null);
  assertEquals(summary.choiceEvents, 1);
  const last = out.trim().split("\n\n").at(-1)!;
  assertEquals(JSON.parse(last.slice(6)).error.code, "upstream_error");
});

Deno.test("meterStream() passes an upstream error event through and reports it", async () => {
  const error =
    'data: {"error":{"message":"boom","type":"api_error","param":null,"code":null}}\n\n';
  const { out, summary } = await run(chunk("a") + error, true);
  assertEquals(out, chunk("a") + error);
  assertEquals(summary.outcome, "upstream_error");
});
