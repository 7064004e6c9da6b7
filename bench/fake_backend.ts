/**
 * A fast fake OpenAI-compatible backend for benchmarks, run as its own process:
 * `deno run -A bench/fake_backend.ts PORT LATENCY_MS CHUNKS GAP_MS`. Prints `READY <port>`.
 * Non-streamed answers wait LATENCY_MS; streams send CHUNKS chunks GAP_MS apart. `GET /stats`
 * returns how many completions it served, so the harness can prove refused requests never arrive.
 */
const [portArg = "0", latencyArg = "0", chunksArg = "20", gapArg = "0"] = Deno.args;
const latencyMs = Number(latencyArg);
const chunks = Number(chunksArg);
const gapMs = Number(gapArg);
const encoder = new TextEncoder();
let served = 0;

const usage = { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks };
const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1700000000,
  model: "bench-model",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "word ".repeat(chunks).trim() },
    finish_reason: "stop",
  }],
  usage,
});
const chunk = (content: string, finish: string | null) =>
  encoder.encode(
    `data: ${
      JSON.stringify({
        id: "chatcmpl-bench",
        object: "chat.completion.chunk",
        created: 1700000000,
        model: "bench-model",
        choices: [{ index: 0, delta: { content }, finish_reason: finish }],
      })
    }\n\n`,
  );
const usageChunk = encoder.encode(
  `data: ${
    JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", choices: [], usage })
  }\n\n`,
);
const done = encoder.encode("data: [DONE]\n\n");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function stream(includeUsage: boolean): Response {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent > 0 && gapMs > 0) await sleep(gapMs);
      if (sent < chunks) {
        controller.enqueue(chunk("word ", null));
      } else {
        controller.enqueue(chunk("", "stop"));
        if (includeUsage) controller.enqueue(usageChunk);
        controller.enqueue(done);
        controller.close();
      }
      sent++;
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

const server = Deno.serve(
  { hostname: "127.0.0.1", port: Number(portArg), onListen() {} },
  async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/stats") return Response.json({ served });
    if (path === "/v1/models") {
      return Response.json({
        object: "list",
        data: [{ id: "bench-model", object: "model", created: 0, owned_by: "bench" }],
      });
    }
    const body = await request.json();
    served++;
    if (body.stream === true) return stream(body.stream_options?.include_usage === true);
    if (latencyMs > 0) await sleep(latencyMs);
    return new Response(completion, { headers: { "content-type": "application/json" } });
  },
);
console.log(`READY ${(server.addr as Deno.NetAddr).port}`);
