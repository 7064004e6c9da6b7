/**
 * The stream meter's own memory: 200 long streams metered in-process, each read to 90% of 4,000
 * chunks, with the JavaScript heap measured after a forced collection before and after. What the
 * meter keeps alive must not grow with a stream's length.
 * `deno run -A --v8-flags=--expose-gc bench/meter_heap.ts`
 */
import { openAiErrorEvent, openAiInspector } from "../src/formats/openai_events.ts";
import { meterStream } from "../src/usage/meter.ts";

const STREAMS = 200;
const CHUNKS = 4000;
const encoder = new TextEncoder();
const chunk = encoder.encode(
  `data: ${
    JSON.stringify({
      id: "c",
      object: "chat.completion.chunk",
      created: 1,
      model: "m",
      choices: [{ index: 0, delta: { content: "word " }, finish_reason: null }],
    })
  }\n\n`,
);

function upstream(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent++ < CHUNKS) controller.enqueue(chunk.slice());
      else {
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        controller.close();
      }
    },
  }, { highWaterMark: 0 });
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const readers = [];
for (let i = 0; i < STREAMS; i++) {
  const stream = meterStream(upstream(), {
    framing: "sse",
    inspect: openAiInspector(true),
    errorEvent: openAiErrorEvent,
    idleMs: 60_000,
    now: Date.now,
    startedAt: Date.now(),
    onEnd() {},
  });
  const reader = stream.getReader();
  await reader.read();
  readers.push(reader);
}
gc();
const before = Deno.memoryUsage().heapUsed;
await Promise.all(readers.map(async (reader) => {
  for (let i = 0; i < CHUNKS * 0.9; i++) await reader.read();
}));
gc();
const after = Deno.memoryUsage().heapUsed;
console.log(
  `JS heap with ${STREAMS} open streams: ${(before / 1048576).toFixed(1)} MiB after the first ` +
    `chunk, ${(after / 1048576).toFixed(1)} MiB after 90% of ${CHUNKS} chunks`,
);
await Promise.all(readers.map((reader) => reader.cancel()));
