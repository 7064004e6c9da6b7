import { assertEquals, assertRejects } from "../tests/assert.ts";
import { ollamaToSse } from "./ollama_stream.ts";

const lines = [
  {
    model: "m",
    created_at: "2026-11-24T10:00:00Z",
    message: { role: "assistant", content: "Ça" },
    done: false,
  },
  {
    model: "m",
    created_at: "2026-11-24T10:00:00Z",
    message: { role: "assistant", content: " va 🙂" },
    done: false,
  },
  {
    model: "m",
    created_at: "2026-11-24T10:00:00Z",
    message: { role: "assistant", content: "" },
    done: true,
    done_reason: "length",
    prompt_eval_count: 9,
    eval_count: 2,
  },
].map((line) => JSON.stringify(line) + "\n").join("");

async function convert(bytes: Uint8Array, cuts: number[]): Promise<string> {
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(start, cut));
    start = cut;
  }
  const source = ReadableStream.from(pieces);
  const stream = source.pipeThrough(
    ollamaToSse({ kind: "chat", requestId: "r1", model: "m", now: () => 0 }),
  );
  return await new Response(stream).text();
}

Deno.test("ollamaToSse() gives byte-identical output wherever the NDJSON is cut", async () => {
  const bytes = new TextEncoder().encode(lines);
  const whole = await convert(bytes, []);
  for (let cut = 1; cut < bytes.length; cut++) {
    assertEquals(await convert(bytes, [cut]), whole, `cut at byte ${cut}`);
  }
  const events = whole.trim().split("\n\n").map((e) => e.slice(6));
  assertEquals(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assertEquals(chunks[0].choices[0].delta, { role: "assistant", content: "Ça" });
  assertEquals(chunks[1].choices[0].delta, { content: " va 🙂" });
  assertEquals(chunks[2].choices[0].finish_reason, "length");
  assertEquals(chunks[3].choices, []);
  assertEquals(chunks[3].usage, { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
  assertEquals(new Set(chunks.map((c) => c.id)), new Set(["chatcmpl-r1"]));
  assertEquals(chunks[0].created, Date.parse("2026-11-24T10:00:00Z") / 1000);
});

Deno.test("ollamaToSse() errors when the stream ends before done, so the cut is reported", async () => {
  const partial = new TextEncoder().encode(lines.split("\n")[0] + "\n");
  await assertRejects(() => convert(partial, []), Error, "ended before it was done");
});
