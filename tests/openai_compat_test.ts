import { assert, assertEquals, assertRejects } from "./assert.ts";
import OpenAI from "openai";
import { DEFAULT_REPLY, startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway } from "./helpers.ts";

for (const kind of ["vllm", "llamacpp", "openai", "openai_compatible"] as const) {
  Deno.test(`${kind} adapter: chat, stream, completions, embeddings and models through the SDK`, async () => {
    const versioned = kind === "openai" || kind === "openai_compatible";
    const fake = await startFakeOpenAi({ apiKey: "upstream-secret" });
    const baseUrl = versioned ? `${fake.url}/v1` : fake.url;
    const gateway = await startTestGateway(`
backends:
  - name: up
    type: ${kind}
    base_url: ${baseUrl}
    api_key: upstream-secret
`);
    try {
      const client = gateway.client();
      const chat = await client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "Say hello please" }],
        temperature: 0.2,
        // An unknown field must reach the backend untouched.
        // @ts-ignore: not part of the SDK's types on purpose
        custom_field: { nested: [1, 2] },
      });
      assertEquals(chat.choices[0].message.content, DEFAULT_REPLY);
      assertEquals(
        chat.usage?.prompt_tokens,
        fake.requests.at(-1)!.body!.messages ? chat.usage?.prompt_tokens : -1,
      );
      assertEquals(fake.requests.at(-1)!.body!.custom_field, { nested: [1, 2] });
      assertEquals(fake.requests.at(-1)!.headers.get("authorization"), "Bearer upstream-secret");

      const stream = await client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "Say hello" }],
        stream: true,
      });
      let text = "";
      let finish: string | null = null;
      let sawUsage = false;
      for await (const chunk of stream) {
        if (chunk.usage) sawUsage = true;
        text += chunk.choices[0]?.delta?.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assertEquals(text, DEFAULT_REPLY);
      assertEquals(finish, "stop");
      assertEquals(sawUsage, false, "usage chunk must be hidden when the client did not ask");
      const upstreamOptions = fake.requests.at(-1)!.body!.stream_options as Record<string, unknown>;
      assertEquals(upstreamOptions.include_usage, true);

      const withUsage = await client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "Say hello" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of withUsage) usage = chunk.usage ?? usage;
      assert(usage && usage.completion_tokens > 0);

      const completion = await client.completions.create({ model: "gpt-test", prompt: "Once" });
      assertEquals(completion.choices[0].text, DEFAULT_REPLY);

      const embedding = await client.embeddings.create({
        model: "embed-test",
        input: ["a b", "c"],
      });
      assertEquals(embedding.data.length, 2);
      assertEquals(embedding.data[0].embedding.length, 3);

      const models = await client.models.list();
      const ids = models.data.map((m) => m.id);
      assert(ids.includes("gpt-test"), `models: ${ids}`);
      const one = await client.models.retrieve("gpt-test");
      assertEquals(one.id, "gpt-test");

      await assertRejects(
        () =>
          client.chat.completions.create({
            model: "nope",
            messages: [{ role: "user", content: "x" }],
          }),
        OpenAI.NotFoundError,
      );
    } finally {
      await gateway.shutdown();
      await fake.close();
    }
  });
}

Deno.test("openai_compatible adapter: the credential goes in the configured header with the configured prefix", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
backends:
  - name: api3
    type: openai_compatible
    base_url: ${fake.url}/v1
    api_key: third-party-secret
    auth_header: x-api-key
    auth_prefix: ""
    models: [gpt-test]
`);
  try {
    await gateway.client().chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
    });
    const headers = fake.requests.at(-1)!.headers;
    assertEquals(headers.get("x-api-key"), "third-party-secret");
    assertEquals(headers.get("authorization"), null, "the client's own key is never forwarded");
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
