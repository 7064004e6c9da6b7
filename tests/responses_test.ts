/** POST /v1/responses through the gateway, with the clients that speak it only. */
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import OpenAI from "openai";
import { assert, assertEquals } from "./assert.ts";
import { startFakeOllama } from "./fakes/ollama_backend.ts";
import { DEFAULT_REPLY, startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway, type TestGateway } from "./helpers.ts";

type Fakes = {
  ollama: Awaited<ReturnType<typeof startFakeOllama>>;
  vllm: Awaited<ReturnType<typeof startFakeOpenAi>>;
  openai: Awaited<ReturnType<typeof startFakeOpenAi>>;
};

/** Ollama and vLLM get translations; the OpenAI-type backend speaks the API itself. */
async function withBackends(fn: (gateway: TestGateway, fakes: Fakes) => Promise<void>) {
  const fakes: Fakes = {
    ollama: await startFakeOllama(),
    vllm: await startFakeOpenAi({ models: ["gpt-test", "die-midstream"] }),
    openai: await startFakeOpenAi({ models: ["gpt-native"] }),
  };
  const gateway = await startTestGateway(`
backends:
  - { name: ollama, type: ollama, base_url: "${fakes.ollama.url}" }
  - { name: vllm, type: vllm, base_url: "${fakes.vllm.url}", models: [gpt-test, die-midstream] }
  - { name: openai, type: openai, base_url: "${fakes.openai.url}/v1", models: [gpt-native] }
`);
  try {
    await fn(gateway, fakes);
  } finally {
    await gateway.shutdown();
    for (const fake of Object.values(fakes)) await fake.close();
  }
}

async function records(gateway: TestGateway, keyId: string) {
  const response = await gateway.admin("GET", `/requests?key=${keyId}`);
  return (await response.json()).data as Record<string, unknown>[];
}

const MODELS = ["llama3.2:1b", "gpt-test", "gpt-native"];

Deno.test("responses: the openai SDK creates plain and streamed responses on every backend kind, billed as reported", async () => {
  await withBackends(async (gateway, fakes) => {
    const { key, id } = await gateway.createKey({ quota_tokens: 1_000_000 });
    const client = gateway.client(key);
    for (const model of MODELS) {
      const plain = await client.responses.create({
        model,
        input: "Say hello",
        max_output_tokens: 50,
      });
      assertEquals(plain.object, "response");
      assertEquals(plain.status, "completed");
      assert(plain.output_text.length > 0, `${model}: empty output`);
      assert(plain.usage && plain.usage.input_tokens > 0 && plain.usage.output_tokens > 0);

      const stream = await client.responses.create({ model, input: "Say hello", stream: true });
      let text = "";
      let completed: OpenAI.Responses.Response | null = null;
      for await (const event of stream) {
        if (event.type === "response.output_text.delta") text += event.delta;
        if (event.type === "response.completed") completed = event.response;
      }
      assertEquals(text, plain.output_text, `${model}: streamed text`);
      assert(completed?.usage, `${model}: response.completed carries usage`);
    }
    // The native backend got the Responses request itself; the others a chat body.
    assertEquals(fakes.openai.requests.filter((r) => r.path === "/v1/responses").length, 2);
    assertEquals(fakes.vllm.requests.filter((r) => r.path === "/v1/chat/completions").length, 2);
    const ledger = await records(gateway, id);
    assertEquals(ledger.length, MODELS.length * 2);
    for (const record of ledger) {
      assertEquals(record.endpoint, "responses");
      assertEquals(record.outcome, "completed");
      assertEquals(record.usage_reported, true, `${record.model} ${record.stream}`);
    }
    const used = (await (await gateway.admin("GET", `/keys/${id}`)).json()).usage.used_tokens;
    assertEquals(used, ledger.reduce((sum, r) => sum + Number(r.total_tokens), 0));
  });
});

Deno.test("responses: function tools and tool results round-trip through an Ollama backend", async () => {
  await withBackends(async (gateway) => {
    const client = gateway.client();
    const tools: OpenAI.Responses.Tool[] = [{
      type: "function",
      name: "get_weather",
      description: "Weather of a city",
      parameters: { type: "object", properties: { city: { type: "string" } } },
      strict: false,
    }];
    const first = await client.responses.create({
      model: "llama3.2:1b",
      input: "What is the weather? [tool]",
      tools,
    });
    const call = first.output.find((item) => item.type === "function_call");
    assert(call && call.type === "function_call", JSON.stringify(first.output));
    assertEquals(call.name, "get_weather");
    assertEquals(JSON.parse(call.arguments), { city: "Paris" });
    const second = await client.responses.create({
      model: "llama3.2:1b",
      input: [
        { role: "user", content: "What is the weather? [tool]" },
        call,
        { type: "function_call_output", call_id: call.call_id, output: "Sunny" },
      ],
      tools,
    });
    assertEquals(second.status, "completed");
    const streamed = await client.responses.create({
      model: "llama3.2:1b",
      input: "What is the weather? [tool]",
      tools,
      stream: true,
    });
    let args = "";
    for await (const event of streamed) {
      if (event.type === "response.function_call_arguments.delta") args += event.delta;
    }
    assertEquals(JSON.parse(args), { city: "Paris" });
  });
});

Deno.test("responses: text.format json_schema reaches the backend as a response format", async () => {
  await withBackends(async (gateway, fakes) => {
    const schema = { type: "object", properties: { answer: { type: "string" } } };
    await gateway.client().responses.create({
      model: "llama3.2:1b",
      input: "Answer in JSON",
      text: { format: { type: "json_schema", name: "answer", schema, strict: true } },
    });
    assertEquals(fakes.ollama.requests.at(-1)!.body!.format, schema);
  });
});

Deno.test("responses: stored-state parameters get a clear 400; a backend dying mid-stream fails the SDK", async () => {
  await withBackends(async (gateway) => {
    const client = gateway.client();
    const stateful = await client.responses.create({
      model: "gpt-test",
      input: "again",
      previous_response_id: "resp_123",
    }).catch((err) => err);
    assert(stateful instanceof OpenAI.BadRequestError);
    assertEquals(stateful.code, "unsupported_parameter");
    assertEquals(stateful.param, "previous_response_id");

    let failure: unknown = null;
    try {
      const stream = await client.responses.create({
        model: "die-midstream",
        input: "hi",
        stream: true,
      });
      for await (const _ of stream) { /* drain */ }
    } catch (err) {
      failure = err;
    }
    assert(failure instanceof OpenAI.APIError, `no error: ${failure}`);
  });
});

Deno.test("responses: the Vercel AI SDK's default openai(model) generates and streams text", async () => {
  await withBackends(async (gateway) => {
    const openai = createOpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.apiKey });
    for (const model of ["gpt-test", "gpt-native"]) {
      const generated = await generateText({ model: openai(model), prompt: "Say hello" });
      assertEquals(generated.text, DEFAULT_REPLY);
      assert(generated.usage.inputTokens! > 0 && generated.usage.outputTokens! > 0);
      const streamed = streamText({ model: openai(model), prompt: "Say hello" });
      let text = "";
      for await (const delta of streamed.textStream) text += delta;
      assertEquals(text, DEFAULT_REPLY);
    }
  });
});

Deno.test("responses: a backend configured with responses: true gets the request as it came", async () => {
  const vllm = await startFakeOpenAi({ models: ["gpt-test"] });
  const gateway = await startTestGateway(`
backends:
  - { name: vllm, type: vllm, base_url: "${vllm.url}", models: [gpt-test], responses: true }
`);
  try {
    const answer = await gateway.client().responses.create({ model: "gpt-test", input: "Hi" });
    assertEquals(answer.status, "completed");
    assertEquals(vllm.requests.filter((r) => r.path === "/v1/responses").length, 1);
    assertEquals(vllm.requests.filter((r) => r.path === "/v1/chat/completions").length, 0);
    // Passed on as it came, but for the fields that could steer a backend.
    const steering = { api_base: "http://evil.example", api_key: "sk-stolen", extra_body: {} };
    const response = await fetch(`${gateway.url}/v1/responses`, {
      method: "POST",
      headers: { ...gateway.auth, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", input: "Hi", temperature: 0.5, ...steering }),
    });
    assertEquals(response.status, 200);
    await response.body?.cancel();
    const sent = vllm.requests.at(-1)!;
    assertEquals([sent.path, sent.body?.temperature], ["/v1/responses", 0.5]);
    for (const field of Object.keys(steering)) assert(!(field in sent.body!), `${field} forwarded`);
  } finally {
    await gateway.shutdown();
    await vllm.close();
  }
});

Deno.test("responses: the Vercel AI SDK's multi-turn chats work with store: false, and are refused clearly without", async () => {
  await withBackends(async (gateway) => {
    const openai = createOpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.apiKey });
    // A conversation continued with the SDK's own record of the first turn, as apps do.
    const turn = async (store: boolean) => {
      const options = { providerOptions: { openai: { store } } };
      const prompt = [{ role: "user" as const, content: "Say hello" }];
      const first = await generateText({ model: openai("gpt-test"), messages: prompt, ...options });
      return generateText({
        model: openai("gpt-test"),
        messages: [...prompt, ...first.response.messages, { role: "user", content: "Again" }],
        ...options,
      });
    };
    assertEquals((await turn(false)).text, DEFAULT_REPLY);
    const stored = await turn(true).catch((err) => err);
    assert(stored instanceof Error, "earlier turns by reference need stored responses");
    const body = String((stored as { responseBody?: string }).responseBody ?? stored.message);
    assert(body.includes("unsupported_parameter"), body);
  });
});
