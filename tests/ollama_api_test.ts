/** Ollama's own API (/api/*) through the gateway, driven by ollama-js with a ModelGate key. */
import { Ollama } from "ollama";
import { assert, assertEquals } from "./assert.ts";
import { startFakeOllama } from "./fakes/ollama_backend.ts";
import { DEFAULT_REPLY, startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway, type TestGateway, waitFor } from "./helpers.ts";
import { checkAccounting } from "./store/invariant.ts";

type Fakes = {
  ollama: Awaited<ReturnType<typeof startFakeOllama>>;
  vllm: Awaited<ReturnType<typeof startFakeOpenAi>>;
};

async function withBackends(fn: (gateway: TestGateway, fakes: Fakes) => Promise<void>) {
  const fakes: Fakes = {
    ollama: await startFakeOllama(),
    vllm: await startFakeOpenAi({
      models: ["gpt-test", "embed-test", "die-midstream", "slow-stream"],
    }),
  };
  const gateway = await startTestGateway(`
backends:
  - { name: ollama, type: ollama, base_url: "${fakes.ollama.url}" }
  - name: vllm
    type: vllm
    base_url: "${fakes.vllm.url}"
    models: [gpt-test, embed-test, die-midstream, slow-stream]
`);
  try {
    await fn(gateway, fakes);
  } finally {
    await gateway.shutdown();
    await fakes.ollama.close();
    await fakes.vllm.close();
  }
}

const client = (gateway: TestGateway, key = gateway.apiKey) =>
  new Ollama({ host: gateway.url, headers: { Authorization: `Bearer ${key}` } });

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

async function ledger(gateway: TestGateway, keyId: string) {
  return (await (await gateway.admin("GET", `/requests?key=${keyId}`)).json()).data as Record<
    string,
    unknown
  >[];
}

Deno.test("ollama API: list, show, ps and version show what the key may use", async () => {
  await withBackends(async (gateway) => {
    const { key } = await gateway.createKey({ allowed_models: ["llama3*", "gpt-test"] });
    const ollama = client(gateway, key);
    const names = (await ollama.list()).models.map((m) => m.name).sort();
    assertEquals(names, ["gpt-test", "llama3.2:1b"]);
    assertEquals((await ollama.ps()).models.length, 2);
    const shown = await ollama.show({ model: "gpt-test" });
    assert(Array.isArray(shown.capabilities));
    const hidden = await ollama.show({ model: "nomic-embed-text" }).catch((err) => err);
    assert(hidden instanceof Error && hidden.message.includes("not found"), String(hidden));
    assert((await ollama.version()).version.length > 0);
  });
});

Deno.test("ollama API: chat plain and streamed, on an Ollama backend (as is) and a vLLM one (translated)", async () => {
  await withBackends(async (gateway, fakes) => {
    const { key, id } = await gateway.createKey({});
    const ollama = client(gateway, key);
    for (const model of ["llama3.2:1b", "gpt-test"]) {
      const plain = await ollama.chat({ model, messages: [{ role: "user", content: "Hi" }] });
      assertEquals(plain.done, true);
      assert(plain.message.content.length > 0, model);
      assert(plain.eval_count > 0 && plain.prompt_eval_count > 0, JSON.stringify(plain));
      const stream = await ollama.chat({
        model,
        messages: [{ role: "user", content: "Hi" }],
        stream: true,
      });
      let text = "";
      let last = null;
      for await (const part of stream) {
        text += part.message.content;
        last = part;
      }
      assertEquals(text, plain.message.content, model);
      assertEquals(last?.done, true);
      assert(last!.eval_count > 0);
    }
    assertEquals(fakes.ollama.requests.filter((r) => r.path === "/api/chat").length, 2);
    assertEquals(
      fakes.vllm.requests.filter((r) => r.path === "/v1/chat/completions").length,
      2,
      "the vLLM backend got chat completions",
    );
    const records = await ledger(gateway, id);
    assertEquals(records.length, 4);
    for (const record of records) {
      assertEquals(record.endpoint, "ollama_chat");
      assertEquals(record.outcome, "completed");
      assertEquals(record.usage_reported, true);
    }
  });
});

Deno.test("ollama API: tools come back as Ollama tool calls on both backend kinds", async () => {
  await withBackends(async (gateway) => {
    const ollama = client(gateway);
    for (const model of ["llama3.2:1b", "gpt-test"]) {
      for (const stream of [false, true]) {
        const messages = [{ role: "user", content: "Weather in Paris? [tool]" }];
        const calls = [];
        if (stream) {
          const parts = await ollama.chat({ model, messages, tools: [weatherTool], stream: true });
          for await (const part of parts) calls.push(...(part.message.tool_calls ?? []));
        } else {
          const answer = await ollama.chat({ model, messages, tools: [weatherTool] });
          calls.push(...(answer.message.tool_calls ?? []));
        }
        assertEquals(calls.length, 1, `${model} stream=${stream}`);
        assertEquals(calls[0].function.name, "get_weather");
        assertEquals(calls[0].function.arguments, { city: "Paris" });
      }
    }
  });
});

Deno.test("ollama API: generate and embed on both backend kinds", async () => {
  await withBackends(async (gateway) => {
    const ollama = client(gateway);
    const generated = await ollama.generate({ model: "gpt-test", prompt: "Hello" });
    assertEquals(generated.response, DEFAULT_REPLY);
    assertEquals(generated.done, true);
    const native = await ollama.generate({ model: "llama3.2:1b", prompt: "Hello" });
    assert((native.response ?? "").length > 0);
    const streamed = await ollama.generate({ model: "gpt-test", prompt: "Hello", stream: true });
    let text = "";
    for await (const part of streamed) text += part.response;
    assertEquals(text, DEFAULT_REPLY);
    for (const model of ["nomic-embed-text", "embed-test"]) {
      const embedded = await ollama.embed({ model, input: ["hello", "world!"] });
      assertEquals(embedded.embeddings.length, 2);
      assertEquals(embedded.embeddings[0][0], 0.5, `${model}: the backend's vector`);
    }
  });
});

Deno.test('ollama API: errors are Ollama\'s {"error": text}, never [object Object]', async () => {
  await withBackends(async (gateway) => {
    const unknown = await client(gateway).chat({
      model: "no-such-model",
      messages: [{ role: "user", content: "hi" }],
    }).catch((err) => err);
    assert(unknown instanceof Error);
    assert(!unknown.message.includes("[object Object]"), unknown.message);
    assert(unknown.message.includes("no-such-model"), unknown.message);
    const badKey = await client(gateway, "mg-nope").list().catch((err) => err);
    assert(badKey instanceof Error && badKey.message.includes("Invalid API key"), badKey.message);
    for (const path of ["/api/pull", "/api/delete", "/api/create", "/api/copy", "/api/push"]) {
      const response = await fetch(`${gateway.url}${path}`, {
        method: "POST",
        headers: { ...gateway.auth, "content-type": "application/json" },
        body: JSON.stringify({ model: "llama3.2:1b" }),
      });
      const body = await response.json();
      assertEquals(response.status, 403, path);
      assertEquals(typeof body.error, "string");
    }
    const invalid = await fetch(`${gateway.url}/api/chat`, {
      method: "POST",
      headers: { ...gateway.auth, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: "hi" }),
    });
    assertEquals(invalid.status, 400);
    assert((await invalid.json()).error.includes("messages"));
  });
});

Deno.test("ollama API: failed and cancelled streams end as Ollama does and are billed as far as they went", async () => {
  await withBackends(async (gateway, fakes) => {
    const { key, id } = await gateway.createKey({});
    const ollama = client(gateway, key);
    for (const model of ["die-midstream", "error-midstream"]) {
      let failure: unknown = null;
      try {
        const stream = await ollama.chat({
          model,
          messages: [{ role: "user", content: "hi" }],
          stream: true,
        });
        for await (const _ of stream) { /* drain */ }
      } catch (err) {
        failure = err;
      }
      assert(failure instanceof Error, `${model}: a failed stream must not look finished`);
    }
    const stream = await ollama.chat({
      model: "slow-stream",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let parts = 0;
    for await (const _ of stream) {
      if (++parts === 2) break;
    }
    stream.abort(); // what ollama-js offers a client that stops reading
    // Both backends serve slow-stream; whichever was chosen saw the cancel.
    await waitFor(() => fakes.vllm.cancelled + fakes.ollama.cancelled === 1);
    await waitFor(async () => (await ledger(gateway, id)).length === 3);
    const outcomes = (await ledger(gateway, id)).map((r) => `${r.model}:${r.outcome}`).sort();
    assertEquals(outcomes, [
      "die-midstream:upstream_error",
      "error-midstream:upstream_error",
      "slow-stream:client_cancelled",
    ]);
    for (const record of await ledger(gateway, id)) {
      assert(Number(record.total_tokens) > 0, "a cut stream is charged its estimate");
    }
    await checkAccounting(gateway, { keys: { [id]: { answered: 3 } } });
  });
});

Deno.test("ollama API: the older /api/embeddings, and Ollama-only features on each backend kind", async () => {
  await withBackends(async (gateway, fakes) => {
    const post = (path: string, body: Record<string, unknown>) =>
      fetch(`${gateway.url}${path}`, {
        method: "POST",
        headers: { ...gateway.auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    for (const model of ["nomic-embed-text", "embed-test"]) {
      const legacy = await post("/api/embeddings", { model, prompt: "hello" });
      assertEquals(legacy.status, 200, model);
      assertEquals((await legacy.json()).embedding[0], 0.5, `${model}: the backend's vector`);
    }
    const raw = { prompt: "[INST] hi [/INST]", raw: true, stream: false, api_key: "sk-x" };
    const native = await post("/api/generate", { model: "llama3.2:1b", ...raw });
    assertEquals(native.status, 200, "an Ollama backend serves raw prompts");
    await native.body?.cancel();
    const sent = fakes.ollama.requests.at(-1)!.body!;
    assertEquals(sent.raw, true, "passed through as it came");
    assert(!("api_key" in sent), "routing-like fields are removed on /api too");
    const translated = await post("/api/generate", { model: "gpt-test", ...raw });
    assertEquals(translated.status, 400);
    assert((await translated.json()).error.includes("raw"), "the field is named");
  });
});

Deno.test("ollama API: options reach OpenAI's own API in the fields it takes, other backends as sent", async () => {
  const openai = await startFakeOpenAi({ models: ["gpt-4o-mini"] });
  const vllm = await startFakeOpenAi({ models: ["gpt-test"] });
  const gateway = await startTestGateway(`
backends:
  - { name: openai, type: openai, base_url: "${openai.url}/v1", models: [gpt-4o-mini] }
  - { name: vllm, type: vllm, base_url: "${vllm.url}", models: [gpt-test] }
`);
  try {
    const ollama = client(gateway);
    const options = { top_k: 40, num_predict: 64, temperature: 0.5 };
    const messages = [{ role: "user", content: "Say hello" }];
    const official = await ollama.chat({ model: "gpt-4o-mini", messages, options });
    assertEquals(official.message.content, DEFAULT_REPLY);
    const toOpenAi = openai.requests.at(-1)!.body!;
    assert(!("top_k" in toOpenAi) && !("max_tokens" in toOpenAi), JSON.stringify(toOpenAi));
    assertEquals([toOpenAi.max_completion_tokens, toOpenAi.temperature], [64, 0.5]);
    await ollama.chat({ model: "gpt-test", messages, options });
    const toVllm = vllm.requests.at(-1)!.body!;
    assertEquals([toVllm.top_k, toVllm.max_tokens, toVllm.temperature], [40, 64, 0.5]);
  } finally {
    await gateway.shutdown();
    await openai.close();
    await vllm.close();
  }
});
