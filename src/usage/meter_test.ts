import { assert, assertEquals } from "../../tests/assert.ts";
import { openAiErrorEvent, openAiInspector } from "../formats/openai_events.ts";
import { type Inspector, PLAIN_EVENT } from "../formats/types.ts";
import { type MeterOptions, meterStream, type StreamSummary } from "./meter.ts";

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

function meter(
  upstream: ReadableStream<Uint8Array>,
  overrides: Partial<MeterOptions> & { stripUsage?: boolean } = {},
) {
  const ended: StreamSummary[] = [];
  const stream = meterStream(upstream, {
    framing: "sse",
    inspect: openAiInspector(overrides.stripUsage ?? true),
    errorEvent: openAiErrorEvent,
    idleMs: 1000,
    now: () => 7,
    startedAt: 0,
    onEnd: (s) => ended.push(s),
    ...overrides,
  });
  return { stream, ended };
}

async function run(text: string, stripUsage: boolean, pieceSize = 3) {
  const { stream, ended } = meter(source(text, pieceSize), { stripUsage });
  const out = await new Response(stream).text();
  assertEquals(ended.length, 1, "onEnd runs exactly once");
  return { out, summary: ended[0] };
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
    assertEquals(summary.outputEvents, 2);
    assertEquals(summary.ttftMs, 7);
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

Deno.test("meterStream() parses bare-CR and CRLF line endings: usage is metered and hidden", async () => {
  for (const eol of ["\r", "\r\n"]) {
    const text = [chunk("a"), usageOnly, "data: [DONE]\n\n"].join("").replaceAll("\n", eol);
    for (const size of [1, 3, 1000]) {
      const { out, summary } = await run(text, true, size);
      assertEquals(summary.outcome, "completed", `eol ${JSON.stringify(eol)} size ${size}`);
      assertEquals(summary.usage?.total_tokens, 7);
      assert(!out.includes('"usage"'), "the usage chunk the client did not ask for is hidden");
      assertEquals(summary.outputEvents, 1);
    }
  }
});

Deno.test("meterStream() never trusts absurd usage numbers from a backend", async () => {
  const absurd =
    'data: {"id":"c","choices":[],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":2,"total_tokens":0}}\n\n';
  const { summary } = await run(chunk("a") + absurd + "data: [DONE]\n\n", true);
  assertEquals(summary.usage, null, "falls back to the gateway's estimate");
  const zeroTotal =
    'data: {"id":"c","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":0}}\n\n';
  const second = await run(chunk("a") + zeroTotal + "data: [DONE]\n\n", true);
  assertEquals(second.summary.usage?.total_tokens, 6, "the total is recomputed");
});

Deno.test("meterStream() reports a stream that ends without [DONE] as an upstream error", async () => {
  const { out, summary } = await run(chunk("a"), true);
  assertEquals(summary.outcome, "upstream_error");
  assertEquals(summary.usage, null);
  assertEquals(summary.outputEvents, 1);
  const last = out.trim().split("\n\n").at(-1)!;
  assertEquals(JSON.parse(last.slice(6)).error.code, "upstream_error");
});

Deno.test("meterStream() replaces an upstream error event with the gateway's own", async () => {
  const error =
    'data: {"error":{"message":"worker 10.1.2.3 exploded","type":"server_error","param":null,"code":"x"}}\n\n';
  const { out, summary } = await run(chunk("a") + error + chunk("never"), true);
  assertEquals(summary.outcome, "upstream_error");
  const events = out.trim().split("\n\n");
  assertEquals(events.length, 2);
  assertEquals(events[0] + "\n\n", chunk("a"));
  const sent = JSON.parse(events[1].slice(6));
  assertEquals(sent.error.code, "upstream_error");
  assertEquals(sent.error.type, "api_error");
  assert(!out.includes("10.1.2.3") && !out.includes("never"));
});

Deno.test("meterStream() ends a stream whose event passes the size limit with an error event", async () => {
  const huge = `data: {"choices":[{"delta":{"content":"${"x".repeat(5000)}"}}]}\n\n`;
  for (const size of [64, 100_000]) {
    const { stream, ended } = meter(source(chunk("a") + huge, size), { maxEventBytes: 1024 });
    const out = await new Response(stream).text();
    assertEquals(ended[0].outcome, "upstream_error");
    assert(out.startsWith(chunk("a")));
    assert(!out.includes("xxxx"));
  }
});

Deno.test("meterStream() forwards chunks of whole, unchanged events as the very bytes that came", async () => {
  const pieces = [chunk("a"), chunk("b") + chunk("c"), "data: [DONE]\n\n"].map((t) =>
    encoder.encode(t)
  );
  const { stream } = meter(ReadableStream.from(pieces));
  const reader = stream.getReader();
  for (const piece of pieces) {
    const { value } = await reader.read();
    assert(value === piece, "same Uint8Array object");
  }
  assertEquals((await reader.read()).done, true);
});

Deno.test("meterStream() ends after the end event even if the backend keeps the stream open", async () => {
  let cancelled = false;
  const upstream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(chunk("a") + "data: [DONE]\n\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  const { stream, ended } = meter(upstream);
  assertEquals(await new Response(stream).text(), chunk("a") + "data: [DONE]\n\n");
  assertEquals(ended[0].outcome, "completed");
  assert(cancelled, "the backend's stream is released");
});

Deno.test("meterStream() times out a backend that goes silent while the client waits", async () => {
  let cancelled = false;
  const upstream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(chunk("a")));
    },
    cancel() {
      cancelled = true;
    },
  });
  const { stream, ended } = meter(upstream, { idleMs: 30, now: () => performance.now() });
  const out = await new Response(stream).text();
  assertEquals(ended[0].outcome, "timeout");
  assertEquals(
    JSON.parse(out.trim().split("\n\n").at(-1)!.slice(6)).error.code,
    "upstream_timeout",
  );
  assert(cancelled);
});

Deno.test("meterStream() ends open streams with server_shutting_down when the gateway stops", async () => {
  const stop = new AbortController();
  const upstream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(chunk("a")));
    },
  });
  const { stream, ended } = meter(upstream, { stop: stop.signal });
  const reader = stream.getReader();
  await reader.read();
  const next = reader.read();
  stop.abort();
  const { value } = await next;
  assertEquals(
    JSON.parse(new TextDecoder().decode(value).slice(6)).error.code,
    "server_shutting_down",
  );
  assertEquals((await reader.read()).done, true);
  assertEquals(ended[0].outcome, "error");
});

Deno.test("meterStream() reads the backend only as fast as the client reads (backpressure)", async () => {
  let pulls = 0;
  const upstream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      controller.enqueue(encoder.encode(chunk(`w${pulls}`)));
    },
  }, { highWaterMark: 0 });
  const { stream, ended } = meter(upstream);
  const reader = stream.getReader();
  for (let i = 0; i < 3; i++) await reader.read();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert(pulls <= 4, `the meter read ${pulls} chunks for a client that read 3`);
  await reader.cancel();
  assertEquals(ended[0].outcome, "client_cancelled");
});

Deno.test("meterStream() meters NDJSON with the format's inspector", async () => {
  const inspect: Inspector = (line) => {
    const parsed = JSON.parse(line);
    if (parsed.done) {
      return {
        ...PLAIN_EVENT,
        end: true,
        usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 },
      };
    }
    return { ...PLAIN_EVENT, output: true };
  };
  const text = '{"message":{"content":"a"},"done":false}\r\n\n{"done":true}\n';
  const { stream, ended } = meter(source(text, 2), {
    framing: "ndjson",
    inspect,
    errorEvent: (_code, message) => encoder.encode(JSON.stringify({ error: message }) + "\n"),
  });
  const out = await new Response(stream).text();
  assertEquals(out, '{"message":{"content":"a"},"done":false}\n{"done":true}\n');
  assertEquals(ended[0].outcome, "completed");
  assertEquals(ended[0].usage?.total_tokens, 3);
  assertEquals(ended[0].outputEvents, 1);
});

Deno.test("meterStream() reports a client that leaves during a pending read as cancelled, not as a fault", async () => {
  let release: () => void = () => {};
  const upstream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(chunk("a")));
    },
    pull() {
      return new Promise<void>((resolve) => (release = resolve));
    },
  });
  const faults: string[] = [];
  const { stream, ended } = meter(upstream, { onFault: (outcome) => faults.push(outcome) });
  const reader = stream.getReader();
  await reader.read();
  const pending = reader.read();
  await new Promise((resolve) => setTimeout(resolve, 5));
  await reader.cancel();
  release();
  await pending;
  await new Promise((resolve) => setTimeout(resolve, 5));
  assertEquals(ended.map((s) => s.outcome), ["client_cancelled"]);
  assertEquals(faults, []);
});
