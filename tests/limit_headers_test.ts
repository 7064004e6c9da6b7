/** Rate-limit headers are always numbers, and a rate of 0 has one documented meaning. */
import { assert, assertEquals } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway } from "./helpers.ts";
import { parseConfig } from "../src/config.ts";
import { ConfigError } from "../src/config_env.ts";

const backendYaml = (url: string) => `
backends:
  - { name: up, type: vllm, base_url: "${url}", models: [gpt-test] }
`;

Deno.test("limits: a rate of 0 is refused at key creation and update with a 400 naming the field", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(backendYaml(fake.url));
  try {
    for (const field of ["rpm", "burst", "tpm", "max_concurrency"]) {
      const created = await gateway.admin("POST", "/keys", { name: "zero", [field]: 0 });
      const body = await created.json();
      assertEquals(created.status, 400, field);
      assertEquals(body.error.param, field);
    }
    // Budgets of 0 stay valid: a key with nothing left to spend.
    const budget = await gateway.admin("POST", "/keys", { name: "spent", quota_tokens: 0 });
    assertEquals(budget.status, 201);
    const spent = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${(await budget.json()).key}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(spent.status, 429);
    assertEquals((await spent.json()).error.code, "insufficient_quota");
    const { id } = await gateway.createKey({});
    const patched = await gateway.admin("PATCH", `/keys/${id}`, { rpm: 0 });
    assertEquals(patched.status, 400);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("limits: a stored rpm of 0 admits nothing and no header is ever NaN", async () => {
  const fake = await startFakeOpenAi();
  let offset = 0;
  const gateway = await startTestGateway(backendYaml(fake.url), { now: () => Date.now() + offset });
  try {
    const { key, id } = await gateway.createKey({ rpm: 10 });
    // As a record written before zero was refused would be.
    await gateway.keys.update(id, { rpm: 0 });
    offset += 1100; // past the key cache's refresh interval
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(response.status, 429);
    assertEquals((await response.json()).error.code, "rate_limit_exceeded");
    for (const [name, value] of response.headers) {
      assert(!value.includes("NaN"), `${name}: ${value}`);
    }
    assertEquals(fake.requests.filter((r) => r.method === "POST").length, 0);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("limits: config defaults refuse a rate of 0 with the usual one-line error", () => {
  let error: unknown = null;
  try {
    parseConfig("defaults:\n  rpm: 0\n", () => undefined);
  } catch (err) {
    error = err;
  }
  assert(error instanceof ConfigError);
  assert(error.message.includes('"defaults.rpm"'), error.message);
});

Deno.test("limits: a key without tpm or rpm gets the token and request headers from its budgets", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(backendYaml(fake.url));
  try {
    const { key } = await gateway.createKey({ quota_tokens: 5000, daily_requests: 3 });
    const call = async (stream = false) => {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-test",
          max_tokens: 10,
          stream,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      await response.body?.cancel();
      const header = (name: string) => response.headers.get(`x-ratelimit-${name}`);
      for (const [name, value] of response.headers) {
        assert(!value.includes("NaN"), `${name}: ${value}`);
      }
      return { status: response.status, header };
    };
    const first = await call();
    assertEquals(first.status, 200);
    assertEquals(first.header("limit-tokens"), "5000");
    const remaining = Number(first.header("remaining-tokens"));
    assert(remaining > 4900 && remaining < 5000, `remaining ${remaining}`);
    assertEquals(first.header("reset-tokens"), null, "a lifetime quota never resets");
    assertEquals(first.header("limit-requests"), "3");
    assertEquals(first.header("remaining-requests"), "2");
    assert(/^(\d+m)?[\d.]+s$|ms$/.test(first.header("reset-requests") ?? ""), "until 00:00 UTC");
    await new Promise((resolve) => setTimeout(resolve, 150)); // the first request's usage is written
    const second = await call(true);
    assertEquals(second.status, 200, "streams carry them too");
    assert(Number(second.header("remaining-tokens")) < remaining, "remaining tokens go down");
    assertEquals(second.header("remaining-requests"), "1");
    await call();
    const refused = await call();
    assertEquals(refused.status, 429);
    assertEquals(refused.header("remaining-requests"), "0");
    const { key: unlimited } = await gateway.createKey({});
    const free = await fetch(`${gateway.url}/v1/models`, {
      headers: { authorization: `Bearer ${unlimited}` },
    });
    await free.body?.cancel();
    assertEquals(free.headers.get("x-ratelimit-limit-tokens"), null, "no limit, nothing to report");
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
