/** What real clients found wrong, each case run with the client that found it. */
import { OpenAIEmbeddings } from "@langchain/openai";
import OpenAI from "openai";
import OpenAI4 from "openai-v4";
import OpenAI5 from "openai-v5";
import { assert, assertEquals } from "./assert.ts";
import { runLegacyClient } from "./clients/legacy.ts";
import { startFakeOllama } from "./fakes/ollama_backend.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { readSse, startTestGateway, type TestGateway } from "./helpers.ts";

/** A gateway with one Ollama and one vLLM-style backend (neither encodes base64 itself). */
async function withBackends(fn: (gateway: TestGateway) => Promise<void>) {
  const ollama = await startFakeOllama();
  const vllm = await startFakeOpenAi({ models: ["embed-test", "gpt-test"] });
  const gateway = await startTestGateway(`
backends:
  - name: ollama
    type: ollama
    base_url: ${ollama.url}
  - name: vllm
    type: vllm
    base_url: ${vllm.url}
`);
  try {
    await fn(gateway);
  } finally {
    await gateway.shutdown();
    await ollama.close();
    await vllm.close();
  }
}

/** The vectors each fake backend computes for a text (see tests/fakes/). */
const EXPECTED: Record<string, (text: string) => number[]> = {
  "nomic-embed-text": (text) => [text.length / 10, 0.25, -0.5, 1],
  "embed-test": (text) => [text.length / 10, 0.5, -0.25],
};

function assertVectors(actual: number[][], model: string, texts: string[], who: string) {
  assertEquals(actual.length, texts.length, who);
  texts.forEach((text, i) => {
    const expected = EXPECTED[model](text);
    assertEquals(actual[i].length, expected.length, `${who}: dimensions`);
    expected.forEach((value, j) => {
      assert(Math.abs(actual[i][j] - value) < 1e-6, `${who}: ${actual[i][j]} != ${value}`);
    });
  });
}

Deno.test("clients: embeddings arrive intact in base64 and float, with openai 4, 5 and 7 and LangChain 1.x and 0.x", async () => {
  await withBackends(async (gateway) => {
    const baseURL = `${gateway.url}/v1`;
    const texts = ["hello", "wörld 🙂 again"];
    for (const model of Object.keys(EXPECTED)) {
      const v4 = new OpenAI4({ baseURL, apiKey: gateway.apiKey, maxRetries: 0 });
      const v5 = new OpenAI5({ baseURL, apiKey: gateway.apiKey, maxRetries: 0 });
      const v7 = gateway.client();
      // openai 4 and 5 ask for base64 by default and decode it themselves.
      const four = await v4.embeddings.create({ model, input: texts });
      assertVectors(four.data.map((d) => d.embedding), model, texts, `openai 4 ${model}`);
      const five = await v5.embeddings.create({ model, input: texts });
      assertVectors(five.data.map((d) => d.embedding), model, texts, `openai 5 ${model}`);
      const seven = await v7.embeddings.create({ model, input: texts });
      assertVectors(seven.data.map((d) => d.embedding), model, texts, `openai 7 ${model}`);
      // An explicit base64 request gets the string OpenAI promises.
      const raw = await v7.embeddings.create({ model, input: texts, encoding_format: "base64" });
      for (const item of raw.data) assertEquals(typeof item.embedding, "string");
      const langchain = new OpenAIEmbeddings({
        model,
        apiKey: gateway.apiKey,
        configuration: { baseURL },
      });
      assertVectors(await langchain.embedDocuments(texts), model, texts, `LangChain 1.x ${model}`);
      const legacy = JSON.parse(
        await runLegacyClient("embed.ts", [baseURL, gateway.apiKey, model, ...texts]),
      );
      assertVectors(legacy, model, texts, `LangChain 0.x ${model}`);
    }
  });
});

Deno.test("clients: a streamed answer carries the x-ratelimit-* headers like any other", async () => {
  await withBackends(async (gateway) => {
    const { key } = await gateway.createKey({ rpm: 100, tpm: 100_000 });
    const client = gateway.client(key);
    const { response, data } = await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    }).withResponse();
    for await (const _ of data) { /* drain */ }
    for (
      const name of [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
      ]
    ) {
      assert(response.headers.get(name), `${name} missing on a stream`);
    }
    assertEquals(response.headers.get("x-ratelimit-limit-requests"), "100");
    assertEquals(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  });
});

Deno.test("clients: a key limited to some models cannot tell forbidden models from missing ones", async () => {
  await withBackends(async (gateway) => {
    const { key } = await gateway.createKey({ allowed_models: ["gpt-*"] });
    const client = gateway.client(key);
    const outcomes = [];
    for (const model of ["llama3.2:1b", "no-such-model"]) {
      try {
        await client.chat.completions.create({
          model,
          messages: [{ role: "user", content: "hi" }],
        });
        outcomes.push("admitted");
      } catch (err) {
        assert(err instanceof OpenAI.APIError);
        outcomes.push(`${err.status} ${err.code} ${err.message.replace(model, "M")}`);
      }
    }
    assertEquals(outcomes[0], outcomes[1]);
    assert(outcomes[0].startsWith("403 model_not_allowed"), outcomes[0]);
  });
});

Deno.test("clients: Ollama's streamed tool calls carry null content, as OpenAI's do", async () => {
  await withBackends(async (gateway) => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...gateway.auth },
      body: JSON.stringify({
        model: "llama3.2:1b",
        stream: true,
        messages: [{ role: "user", content: "weather? [tool]" }],
        tools: [{ type: "function", function: { name: "get_weather", parameters: {} } }],
      }),
    });
    const chunks = (await readSse(response)).filter((e) => e !== "[DONE]").map((e) =>
      JSON.parse(e)
    );
    const withCalls = chunks.filter((c) => c.choices[0]?.delta?.tool_calls);
    assertEquals(withCalls.length, 1);
    assertEquals(withCalls[0].choices[0].delta.content, null);
    const client = gateway.client();
    const plain = await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{ role: "user", content: "weather? [tool]" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: {} } }],
    });
    assertEquals(plain.choices[0].message.content, null);
    assertEquals(plain.choices[0].message.tool_calls?.length, 1);
  });
});

Deno.test("clients: malformed tool_calls are a 400 naming the field, for every backend kind", async () => {
  await withBackends(async (gateway) => {
    for (const model of ["llama3.2:1b", "gpt-test"]) {
      for (const calls of [[null], 5, {}, [{}], [{ function: { name: 5 } }], ["x"]]) {
        const response = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", ...gateway.auth },
          body: JSON.stringify({
            model,
            messages: [{ role: "assistant", content: null, tool_calls: calls }],
          }),
        });
        const body = await response.json();
        assertEquals(response.status, 400, `${model} ${JSON.stringify(calls)}`);
        assert(String(body.error.param).startsWith("messages[0].tool_calls"), body.error.param);
      }
    }
  });
});

Deno.test("clients: endpoints the gateway does not serve answer 404 unsupported_endpoint, after the key", async () => {
  await withBackends(async (gateway) => {
    const client = gateway.client();
    const calls: [string, () => Promise<unknown>][] = [
      ["audio", () => client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "hi" })],
      ["images", () => client.images.generate({ model: "dall-e-3", prompt: "a cat" })],
      ["files", () => client.files.list()],
      ["batches", () => client.batches.list()],
      ["moderations", () => client.moderations.create({ input: "hi" })],
    ];
    for (const [name, call] of calls) {
      const err = await call().catch((e) => e);
      assert(err instanceof OpenAI.NotFoundError, `${name}: ${err}`);
      assertEquals(err.code, "unsupported_endpoint", name);
    }
    const rerank = await fetch(`${gateway.url}/v1/rerank`, {
      method: "POST",
      headers: gateway.auth,
    });
    assertEquals(rerank.status, 404);
    assertEquals((await rerank.json()).error.code, "unsupported_endpoint");
    const anonymous = await fetch(`${gateway.url}/v1/files`);
    assertEquals(anonymous.status, 401, "nothing is told to a caller without a key");
    await anonymous.body?.cancel();
  });
});

Deno.test("clients: without server.cors, no browser origin is answered", async () => {
  await withBackends(async (gateway) => {
    const preflight = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
    });
    await preflight.body?.cancel();
    assertEquals(preflight.status, 403);
    assertEquals(preflight.headers.get("access-control-allow-origin"), null);
  });
});
