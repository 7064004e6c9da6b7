import { assert, assertEquals } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { ADMIN_KEY, readSse, startTestGateway, waitFor } from "./helpers.ts";

const chatBody = (model = "gpt-test", extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, messages: [{ role: "user", content: "hello" }], ...extra });

Deno.test("keys: the plaintext appears nowhere in the KV file or the logs after create, use and rotate", async () => {
  const dir = await Deno.makeTempDir();
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
storage:
  kv: ${dir}/modelgate.kv
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
  const secrets: string[] = [gateway.apiKey];
  let holderId = "";
  try {
    const created = await gateway.createKey({ name: "secret-holder" });
    holderId = created.id;
    secrets.push(created.key);
    const use = async (key: string) => {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: chatBody(),
      });
      assertEquals(response.status, 200);
      await response.body?.cancel();
    };
    await use(created.key);
    const rotated =
      await (await gateway.admin("POST", `/keys/${created.id}/rotate`, { grace_seconds: 60 }))
        .json();
    secrets.push(rotated.key);
    await use(rotated.key);
    await use(created.key);
    const listing = await (await gateway.admin("GET", "/keys")).text();
    for (const secret of secrets) {
      assert(!listing.includes(secret), "a listing shows a plaintext key");
    }
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
  try {
    const files = [...Deno.readDirSync(dir)].map((entry) => `${dir}/${entry.name}`);
    assert(files.length > 0);
    const logs = gateway.logs.join("\n");
    // Each request's access line names its key by id instead.
    const requests = gateway.logs.map((line) => JSON.parse(line)).filter((entry) =>
      entry.message === "request"
    );
    assertEquals(requests.map((entry) => entry.key_id), [holderId, holderId, holderId]);
    for (const secret of secrets) {
      assert(!logs.includes(secret), "a log line holds a plaintext key");
      for (const file of files) {
        const bytes = await Deno.readFile(file);
        const text = new TextDecoder("latin1").decode(bytes);
        assert(!text.includes(secret), `${file} holds a plaintext key`);
        assert(!text.includes(secret.slice(3)), `${file} holds the random part of a key`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keys: X-Forwarded-For is believed only from trusted proxies (right-most untrusted hop)", async () => {
  const fake = await startFakeOpenAi();
  const untrusted = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
  const trusted = await startTestGateway(`
server:
  trusted_proxies: [127.0.0.1/32, "::1"]
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
  try {
    for (const gateway of [untrusted, trusted]) {
      const { key } = await gateway.createKey({ allowed_ips: ["203.0.113.0/24", "2001:db8::/32"] });
      const call = async (xff?: string) => {
        const headers: Record<string, string> = {
          authorization: `Bearer ${key}`,
          "content-type": "application/json",
        };
        if (xff) headers["x-forwarded-for"] = xff;
        const response = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers,
          body: chatBody(),
        });
        await response.body?.cancel();
        return response.status;
      };
      const isTrusted = gateway === trusted;
      // A spoofed header from an untrusted peer changes nothing.
      assertEquals(await call("203.0.113.7"), isTrusted ? 200 : 403);
      assertEquals(await call(), 403);
      // Behind a trusted proxy the right-most address that is not a proxy counts, not a client-
      // supplied left-most one.
      assertEquals(await call("203.0.113.7, 198.51.100.1"), 403);
      assertEquals(await call("198.51.100.1, 203.0.113.7"), isTrusted ? 200 : 403);
      assertEquals(await call("203.0.113.7, 127.0.0.1"), isTrusted ? 200 : 403);
      assertEquals(await call("2001:db8::42"), isTrusted ? 200 : 403);
      assertEquals(await call("::ffff:203.0.113.9"), isTrusted ? 200 : 403);
      assertEquals(await call("garbage"), 403);
    }
  } finally {
    await untrusted.shutdown();
    await trusted.shutdown();
    await fake.close();
  }
});

Deno.test("keys: a stream is charged from the backend's usage even when the client did not ask for it", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test, slow-stream] }
`);
  try {
    const { key, id } = await gateway.createKey();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: chatBody("gpt-test", { stream: true }),
    });
    const events = await readSse(response);
    assert(!events.some((e) => e.includes('"usage"')));
    const records = async () =>
      (await (await gateway.admin("GET", `/requests?key=${id}`)).json()).data;
    await waitFor(async () => (await records()).length === 1);
    const [record] = await records();
    assertEquals(record.outcome, "completed");
    assertEquals(record.usage_reported, true);
    assert(record.completion_tokens > 0 && record.prompt_tokens > 0);
    assertEquals(record.stream, true);
    assert(record.ttft_ms !== null);

    // A client that leaves mid-stream is charged for what was streamed, and the record says so.
    const cut = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: chatBody("slow-stream", { stream: true }),
    });
    const reader = cut.body!.getReader();
    for (let i = 0; i < 3; i++) await reader.read();
    await reader.cancel();
    await waitFor(async () => (await records()).length === 2);
    const [partial] = await records();
    assertEquals(partial.outcome, "client_cancelled");
    assertEquals(partial.usage_reported, false);
    assert(partial.completion_tokens >= 1, JSON.stringify(partial));
    const view = await (await gateway.admin("GET", `/keys/${id}`)).json();
    assertEquals(view.usage.used_tokens, record.total_tokens + partial.total_tokens);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("admin API: wrong keys get 401, repeated failures are slowed down, validation is 400", async () => {
  const gateway = await startTestGateway("");
  try {
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${gateway.url}/admin/api/keys`, {
        headers: { authorization: "Bearer wrong" },
      });
      assertEquals(response.status, 401);
      assertEquals((await response.json()).error.type, "authentication_error");
    }
    const slowed = await fetch(`${gateway.url}/admin/api/keys`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assertEquals(slowed.status, 429, "after 5 failures even the right key waits");
    assert(Number(slowed.headers.get("retry-after")) > 0);
    await slowed.body?.cancel();
  } finally {
    await gateway.shutdown();
  }
  const fresh = await startTestGateway("");
  try {
    const cases: [unknown, string][] = [
      [{ name: "" }, "name"],
      [{ name: "a", rpm: -1 }, "rpm"],
      [{ name: "a", quota_tokens: 1.5 }, "quota_tokens"],
      [{ name: "a", allowed_ips: ["300.1.1.1"] }, "allowed_ips[0]"],
      [{ name: "a", expires_at: "tomorrow-ish" }, "expires_at"],
      [{ name: "a", nonsense: 1 }, "nonsense"],
    ];
    for (const [body, param] of cases) {
      const response = await fresh.admin("POST", "/keys", body);
      assertEquals(response.status, 400, JSON.stringify(body));
      assertEquals((await response.json()).error.param, param);
    }
    const broken = await fetch(`${fresh.url}/admin/api/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: "{",
    });
    assertEquals(broken.status, 400);
    await broken.body?.cancel();
    const missing = await fresh.admin("GET", "/keys/key_nope");
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
    const audit = await (await fresh.admin("GET", "/audit")).json();
    assertEquals(audit.data[0].action, "key.create");
  } finally {
    await fresh.shutdown();
  }
});

Deno.test("admin API: usage aggregates by key and model, with CSV that defuses formulas", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
models:
  gpt-test:
    price: { input: 1000, output: 2000 }
`);
  try {
    const { key, id } = await gateway.createKey({ name: "=HYPERLINK(1)", group: "team-a" });
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: chatBody(),
      });
      await response.body?.cancel();
    }
    const rows = async (query: string) =>
      (await (await gateway.admin("GET", `/usage?${query}`)).json()).data;
    await waitFor(async () => (await rows(`key=${id}`))[0]?.requests === 3);
    const [byKey] = await rows(`key=${id}`);
    const ledger = (await (await gateway.admin("GET", `/requests?key=${id}`)).json()).data;
    const total = ledger.reduce(
      (sum: number, r: { total_tokens: number }) => sum + r.total_tokens,
      0,
    );
    assertEquals(byKey.total_tokens, total);
    assertEquals(byKey.name, "=HYPERLINK(1)");
    const cost = ledger.reduce((sum: number, r: { cost: number }) => sum + r.cost, 0);
    assert(Math.abs(byKey.cost - cost) < 1e-6 && cost > 0);
    const [byModel] = await rows("by=model&model=gpt-test&group_by=hour");
    assertEquals(byModel.requests, 3);
    assertEquals((await rows("group=team-a"))[0].requests, 3);
    assertEquals((await rows("group=nobody")).length, 0);
    const csv = await (await gateway.admin("GET", `/usage?key=${id}&format=csv`)).text();
    assert(csv.startsWith("bucket,subject,name,"));
    assert(csv.includes(",'=HYPERLINK(1),"), csv);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("shutdown: in-flight requests finish and every ledger record is written", async () => {
  const dir = await Deno.makeTempDir();
  const fake = await startFakeOpenAi({ models: ["slow-first-byte"], firstByteDelayMs: 300 });
  const yaml = `
storage:
  kv: ${dir}/modelgate.kv
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [slow-first-byte] }
`;
  const gateway = await startTestGateway(yaml);
  const { key, id } = await gateway.createKey();
  const inFlight = [...Array(20).keys()].map(() =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: chatBody("slow-first-byte"),
    }).then(async (response) => ({ status: response.status, body: await response.json() }))
  );
  // Shut down while all 20 wait for the backend.
  await waitFor(() => fake.requests.length === 20);
  const stopped = gateway.shutdown();
  const results = await Promise.all(inFlight);
  await stopped;
  assert(
    results.every((r) => r.status === 200 && r.body.choices[0].message.content),
    JSON.stringify(results[0]),
  );
  const reopened = await startTestGateway(yaml);
  try {
    const ledger =
      (await (await reopened.admin("GET", `/requests?key=${id}&limit=100`)).json()).data;
    assertEquals(ledger.length, 20);
    const view = await (await reopened.admin("GET", `/keys/${id}`)).json();
    assertEquals(view.usage.reserved_tokens, 0);
  } finally {
    await reopened.shutdown();
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shutdown: after shutdown_timeout_ms open streams end with an error event, waiting requests get 503, and both are recorded", async () => {
  const dir = await Deno.makeTempDir();
  const fake = await startFakeOpenAi({
    models: ["slow-stream", "slow-first-byte"],
    firstByteDelayMs: 5000,
  });
  const yaml = `
server:
  shutdown_timeout_ms: 200
storage:
  kv: ${dir}/modelgate.kv
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [slow-stream, slow-first-byte] }
`;
  const gateway = await startTestGateway(yaml);
  const { key, id } = await gateway.createKey();
  const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  const stream = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers,
    body: chatBody("slow-stream", { stream: true }),
  });
  const waiting = fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers,
    body: chatBody("slow-first-byte"),
  });
  await waitFor(() => fake.requests.length === 2);
  const started = performance.now();
  const stopped = gateway.shutdown();
  const events = await readSse(stream);
  const last = JSON.parse(events.at(-1)!);
  assertEquals(last.error.code, "server_shutting_down");
  const refused = await waiting;
  assertEquals(refused.status, 503);
  assertEquals((await refused.json()).error.code, "server_shutting_down");
  await stopped;
  assert(performance.now() - started < 3000, "shutdown did not wait for the 5 s backend");
  const reopened = await startTestGateway(yaml);
  try {
    const ledger = (await (await reopened.admin("GET", `/requests?key=${id}`)).json()).data;
    assertEquals(ledger.length, 2);
    assertEquals(ledger.map((r: { outcome: string }) => r.outcome).sort(), ["error", "error"]);
  } finally {
    await reopened.shutdown();
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("admin API: backends show in-flight requests, recent latency and errors", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test, slow-stream, die-midstream] }
`);
  try {
    const headers = { ...gateway.auth, "content-type": "application/json" };
    const post = (model: string, stream = false) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: chatBody(model, { stream }),
      });
    await (await post("gpt-test")).body?.cancel();
    await (await post("die-midstream", true)).text();
    const open = await post("slow-stream", true);
    const reader = open.body!.getReader();
    await reader.read();
    const backend = async () => (await (await gateway.admin("GET", "/backends")).json()).data[0];
    const during = await backend();
    assertEquals(during.in_flight, 1);
    assertEquals(during.recent.requests, 2);
    assertEquals(during.recent.errors, 1);
    assert(during.recent.p50_ms !== null);
    await reader.cancel();
    await waitFor(async () => (await backend()).in_flight === 0);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
