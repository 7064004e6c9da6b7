import { assert, assertEquals } from "./assert.ts";
import OpenAI from "openai";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startRedis } from "./fakes/redis_server.ts";
import { startTestGateway, waitFor } from "./helpers.ts";

const backendYaml = (url: string) => `
backends:
  - { name: up, type: vllm, base_url: "${url}", models: [gpt-test, slow-stream] }
`;

Deno.test("rate limits: the SDK gets 429 with OpenAI's headers, and its automatic retry succeeds", async () => {
  const fake = await startFakeOpenAi();
  // Gateway time is real time plus an offset the test moves forward instead of sleeping a minute.
  let offset = 0;
  const gateway = await startTestGateway(backendYaml(fake.url), { now: () => Date.now() + offset });
  try {
    const { key } = await gateway.createKey({ rpm: 1, burst: 1 });
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("x-ratelimit-limit-requests"), "1");
    assertEquals(response.headers.get("x-ratelimit-remaining-requests"), "0");
    assert(/^\d+(\.\d+)?(ms|s)$|m/.test(response.headers.get("x-ratelimit-reset-requests") ?? ""));
    await response.body?.cancel();

    const refused = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(refused.status, 429);
    const body = await refused.json();
    assertEquals(body.error.type, "rate_limit_error");
    assertEquals(body.error.code, "rate_limit_exceeded");
    assert(Number(refused.headers.get("retry-after")) >= 1);
    assert(Number(refused.headers.get("retry-after-ms")) > 0);
    assertEquals(refused.headers.get("x-ratelimit-remaining-requests"), "0");
    assertEquals(fake.requests.length, 1, "a refused request never reaches a backend");

    const noRetry = await gateway.client(key).chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
    }).catch((e) => e);
    assert(noRetry instanceof OpenAI.RateLimitError);

    // Move to just before the window allows the next request: the SDK is told to wait a moment,
    // waits as told, and its retry succeeds.
    offset += 59_700;
    const client = gateway.client(key, { maxRetries: 3 });
    const retried = await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
    });
    assert(retried.choices[0].message.content);
    assertEquals(fake.requests.length, 2);
    // Refused: the raw call, the SDK without retries, and the SDK's first attempt before its retry.
    assertEquals(gateway.metrics.value("modelgate_rate_limited_total", { reason: "rpm" }), 3);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("rate limits: max_concurrency is released when a client disconnects mid-stream", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(backendYaml(fake.url));
  try {
    const { key } = await gateway.createKey({ max_concurrency: 1 });
    const open = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "slow-stream",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    const reader = open.body!.getReader();
    await reader.read();
    const busy = await gateway.client(key).models.list().catch((e) => e);
    assert(busy instanceof OpenAI.RateLimitError, "a second request waits for the slot");
    await reader.cancel();
    await waitFor(() => fake.cancelled === 1);
    await waitFor(async () => {
      const r = await fetch(`${gateway.url}/v1/models`, {
        headers: { authorization: `Bearer ${key}` },
      });
      await r.body?.cancel();
      return r.status === 200;
    });
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("rate limits: two gateways sharing one Redis enforce one combined limit", async () => {
  const redis = await startRedis();
  const fake = await startFakeOpenAi();
  // Both instances share one KV (as instances share a remote KV) and one Redis; each has its own memory.
  const kv = await Deno.openKv(":memory:");
  const yaml = `
redis:
  url: ${redis.url}
${backendYaml(fake.url)}`;
  const one = await startTestGateway(yaml, { kv });
  const two = await startTestGateway(yaml, { kv });
  try {
    const { key } = await one.createKey({ rpm: 60, burst: 6 });
    const status = async (url: string) => {
      const r = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      await r.body?.cancel();
      return r.status;
    };
    // The other instance learns of the new key within about a second.
    await waitFor(async () => (await status(two.url)) !== 401, 3000);
    const statuses = await Promise.all(
      [...Array(20).keys()].map((i) => status(i % 2 ? one.url : two.url)),
    );
    assertEquals(
      statuses.filter((s) => s === 200).length,
      5,
      "6 in the bucket, one used while waiting",
    );
    assertEquals(statuses.filter((s) => s === 429).length, 15);
  } finally {
    await one.shutdown();
    await two.shutdown();
    kv.close();
    await fake.close();
    await redis.close();
  }
});

Deno.test("rate limits: with Redis down, on_error=closed answers 503 with Retry-After; requests flow again after", async () => {
  const redis = await startRedis();
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
redis:
  url: ${redis.url}
  on_error: closed
${backendYaml(fake.url)}`);
  try {
    const { key } = await gateway.createKey({ rpm: 600, burst: 100 });
    const call = async () => {
      const r = await fetch(`${gateway.url}/v1/models`, {
        headers: { authorization: `Bearer ${key}` },
      });
      const body = await r.json();
      return { status: r.status, retry: r.headers.get("retry-after"), code: body.error?.code };
    };
    assertEquals((await call()).status, 200);
    await redis.stop();
    const down = await call();
    assertEquals(down, { status: 503, retry: "1", code: "rate_limit_unavailable" });
    assert(gateway.logs.some((line) => line.includes("redis rate-limit check failed")));
    await redis.start();
    await waitFor(async () => (await call()).status === 200, 5000);
  } finally {
    await gateway.shutdown();
    await fake.close();
    await redis.close();
  }
});
