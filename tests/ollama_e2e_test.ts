import { assert, assertEquals } from "./assert.ts";
import type OpenAI from "openai";
import { startFakeOllama } from "./fakes/ollama_backend.ts";
import { readSse, startTestGateway, waitFor } from "./helpers.ts";

async function withOllama(
  fn: (
    client: OpenAI,
    fake: Awaited<ReturnType<typeof startFakeOllama>>,
    url: string,
    auth: Record<string, string>,
  ) => Promise<void>,
) {
  const fake = await startFakeOllama();
  const gateway = await startTestGateway(`
adapters:
  ollama:
    base_url: ${fake.url}
`);
  try {
    await fn(gateway.client(), fake, gateway.url, gateway.auth);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
}

const lastBody = (fake: { requests: { body: unknown }[] }) =>
  fake.requests.at(-1)!.body as Record<string, unknown>;

Deno.test("ollama through the SDK: models are discovered from /api/tags", async () => {
  await withOllama(async (client) => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert(ids.includes("llama3.2:1b"), ids.join(","));
  });
});

Deno.test("ollama through the SDK: chat maps options and returns an OpenAI completion with usage", async () => {
  await withOllama(async (client, fake) => {
    const chat = await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{ role: "system", content: "Be brief" }, { role: "user", content: "Hi" }],
      temperature: 0.3,
      top_p: 0.9,
      seed: 7,
      stop: ["\n\n"],
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
    });
    assertEquals(chat.object, "chat.completion");
    assertEquals(chat.choices[0].message.role, "assistant");
    assert((chat.choices[0].message.content ?? "").length > 0);
    assertEquals(chat.choices[0].finish_reason, "stop");
    assert(chat.usage && chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens > 0);
    const sent = lastBody(fake);
    assertEquals(fake.requests.at(-1)!.path, "/api/chat");
    assertEquals(sent.stream, false);
    const options = sent.options as Record<string, unknown>;
    assertEquals(options.temperature, 0.3);
    assertEquals(options.top_p, 0.9);
    assertEquals(options.seed, 7);
    assertEquals(options.stop, ["\n\n"]);
    assertEquals(options.presence_penalty, 0.1);
    assertEquals(options.frequency_penalty, 0.2);
  });
});

Deno.test("ollama through the SDK: max_tokens becomes num_predict and a cut answer finishes with length", async () => {
  await withOllama(async (client, fake) => {
    const chat = await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{ role: "user", content: "Tell me a long story" }],
      max_tokens: 3,
    });
    assertEquals((lastBody(fake).options as Record<string, unknown>).num_predict, 3);
    assertEquals(chat.choices[0].finish_reason, "length");
  });
});

Deno.test("ollama through the SDK: a stream reassembles with ids, finish_reason and [DONE]", async () => {
  await withOllama(async (client, fake, url, auth) => {
    const stream = await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{ role: "user", content: "Hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    const ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert(text.includes("é"), text);
    assertEquals(finish, "stop");
    assertEquals(ids.size, 1);
    assert(usage && usage.total_tokens > 0);
    assertEquals(lastBody(fake).stream, true);

    // Without include_usage the client sees no usage chunk, and the stream ends with [DONE].
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({
        model: "llama3.2:1b",
        stream: true,
        messages: [{ role: "user", content: "Hi" }],
      }),
    });
    const events = await readSse(response);
    assertEquals(events.at(-1), "[DONE]");
    assert(!events.some((e) => e.includes('"usage"')), "usage must be hidden");
  });
});

Deno.test("ollama through the SDK: tools go out and tool_calls come back", async () => {
  await withOllama(async (client, fake) => {
    const tools: OpenAI.ChatCompletionTool[] = [{
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather for a city",
        parameters: {
          type: "object",
          properties: { city: { type: "string" } },
          required: ["city"],
        },
      },
    }];
    const chat = await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{ role: "user", content: "Weather in Paris? [tool]" }],
      tools,
    });
    const call = chat.choices[0].message.tool_calls?.[0];
    assert(call && call.type === "function");
    assertEquals(call.function.name, "get_weather");
    assertEquals(typeof JSON.parse(call.function.arguments), "object");
    assertEquals(chat.choices[0].finish_reason, "tool_calls");
    assertEquals((lastBody(fake).tools as unknown[]).length, 1);

    // The tool result goes back: the assistant's tool_calls carry arguments as objects for Ollama.
    await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: '{"temp": 21}' },
      ],
      tools,
    });
    const messages = lastBody(fake).messages as Record<string, unknown>[];
    const assistant = messages[1].tool_calls as { function: { arguments: unknown } }[];
    assertEquals(typeof assistant[0].function.arguments, "object");
    assertEquals(messages[2].role, "tool");
    assertEquals(messages[2].content, '{"temp": 21}');
  });
});

Deno.test("ollama through the SDK: images from data URLs and response_format json", async () => {
  await withOllama(async (client, fake) => {
    await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{
        role: "user",
        content: [
          { type: "text", text: "What is this?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
        ],
      }],
      response_format: { type: "json_object" },
    });
    const sent = lastBody(fake);
    const message = (sent.messages as Record<string, unknown>[])[0];
    assertEquals(message.images, ["iVBORw0KGgo="]);
    assertEquals(message.content, "What is this?");
    assertEquals(sent.format, "json");

    const schema = { type: "object", properties: { a: { type: "number" } } };
    await client.chat.completions.create({
      model: "llama3.2:1b",
      messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "s", schema } },
    });
    assertEquals(lastBody(fake).format, schema);
  });
});

Deno.test("ollama through the SDK: completions and embeddings", async () => {
  await withOllama(async (client, fake) => {
    const completion = await client.completions.create({
      model: "llama3.2:1b",
      prompt: "Once upon",
    });
    assertEquals(completion.object, "text_completion");
    assert(completion.choices[0].text.length > 0);
    assertEquals(fake.requests.at(-1)!.path, "/api/generate");

    const embedding = await client.embeddings.create({
      model: "nomic-embed-text",
      input: ["a", "b"],
    });
    assertEquals(embedding.data.length, 2);
    assert(embedding.data[0].embedding.length > 0);
    assertEquals(fake.requests.at(-1)!.path, "/api/embed");
  });
});

Deno.test("ollama: a client that leaves mid-stream cancels Ollama's stream", async () => {
  await withOllama(async (_client, fake, url, auth) => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({
        model: "slow-stream",
        stream: true,
        messages: [{ role: "user", content: "Hi" }],
      }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    await waitFor(() => fake.cancelled === 1);
  });
});

Deno.test("ollama: an error line mid-stream becomes one SSE error event", async () => {
  await withOllama(async (_client, _fake, url, auth) => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({
        model: "error-midstream",
        stream: true,
        messages: [{ role: "user", content: "Hi" }],
      }),
    });
    const events = await readSse(response);
    assertEquals(JSON.parse(events.at(-1)!).error.code, "upstream_error");
    assert(!events.includes("[DONE]"));
  });
});
