import { assert, assertEquals, assertRejects } from "./assert.ts";
import OpenAI from "openai";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { startTestGateway, type TestGateway, waitFor } from "./helpers.ts";
import { checkAccounting } from "./store/invariant.ts";

const ask = (client: OpenAI, model = "gpt-test") =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hello there" }] });

async function withGateway(
  fn: (gateway: TestGateway, fake: Awaited<ReturnType<typeof startFakeOpenAi>>) => Promise<void>,
  extra = "",
  options: { now?: () => number } = {},
) {
  const fake = await startFakeOpenAi({ models: ["gpt-test", "gpt-other", "llama-3"] });
  const gateway = await startTestGateway(
    `
backends:
  - name: up
    type: vllm
    base_url: ${fake.url}
    models: [gpt-test, gpt-other, llama-3]
${extra}`,
    options,
  );
  try {
    await fn(gateway, fake);
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
}

Deno.test("keys: missing, unknown, malformed, disabled and expired keys get 401 through the SDK", async () => {
  await withGateway(async (gateway, fake) => {
    const missing = await fetch(`${gateway.url}/v1/models`);
    assertEquals(missing.status, 401);
    assertEquals((await missing.json()).error.type, "authentication_error");
    const cases: string[] = [
      "mg-" + "A".repeat(43),
      "not-a-key",
    ];
    for (const key of cases) {
      await assertRejects(() => ask(gateway.client(key)), OpenAI.AuthenticationError);
    }
    const disabled = await gateway.createKey({ disabled: true });
    await assertRejects(() => ask(gateway.client(disabled.key)), OpenAI.AuthenticationError);
    const expired = await gateway.createKey({ expires_at: "2020-01-01T00:00:00Z" });
    await assertRejects(() => ask(gateway.client(expired.key)), OpenAI.AuthenticationError);
    assertEquals(fake.requests.length, 0, "no refused request reaches a backend");

    // The same decisions whichever header carries the key.
    const viaHeader = await fetch(`${gateway.url}/v1/models`, {
      headers: { "x-api-key": gateway.apiKey },
    });
    assertEquals(viaHeader.status, 200);
    await viaHeader.body?.cancel();
    const disabledViaHeader = await fetch(`${gateway.url}/v1/models`, {
      headers: { "api-key": disabled.key },
    });
    assertEquals(disabledViaHeader.status, 401);
    assertEquals((await disabledViaHeader.json()).error.code, "invalid_api_key");
    assert(gateway.metrics.value("modelgate_auth_failures_total", { reason: "disabled" }) >= 2);
  });
});

Deno.test("keys: the stored hash is not a credential", async () => {
  await withGateway(async (gateway) => {
    const { id } = await gateway.createKey();
    // The admin API never shows the hash; the record's prefix and the hash of the key are not keys.
    const shown = await (await gateway.admin("GET", `/keys/${id}`)).json();
    assertEquals(shown.hash, undefined);
    assertEquals(shown.previous_hash, undefined);
    await assertRejects(() => ask(gateway.client(shown.prefix)), OpenAI.AuthenticationError);
  });
});

Deno.test("keys: IP and model allowlists refuse with 403 through the SDK", async () => {
  await withGateway(async (gateway, fake) => {
    const elsewhere = await gateway.createKey({ allowed_ips: ["10.0.0.0/8", "2001:db8::/32"] });
    const err = await assertRejects(
      () => ask(gateway.client(elsewhere.key)),
      OpenAI.PermissionDeniedError,
    );
    assertEquals((err.error as Record<string, unknown>).code, "ip_not_allowed");
    const local = await gateway.createKey({ allowed_ips: ["127.0.0.0/8"] });
    await ask(gateway.client(local.key));

    const limited = await gateway.createKey({ allowed_models: ["gpt-*"] });
    await ask(gateway.client(limited.key), "gpt-other");
    const denied = await assertRejects(
      () => ask(gateway.client(limited.key), "llama-3"),
      OpenAI.PermissionDeniedError,
    );
    assertEquals((denied.error as Record<string, unknown>).code, "model_not_allowed");
    const models = await gateway.client(limited.key).models.list();
    assertEquals(models.data.map((m) => m.id).sort(), ["gpt-other", "gpt-test"]);
    await assertRejects(
      () => gateway.client(limited.key).models.retrieve("llama-3"),
      OpenAI.NotFoundError,
    );
    assertEquals(fake.requests.filter((r) => r.body?.model === "llama-3").length, 0);
  });
});

Deno.test("keys: a request without model uses the key's default_model", async () => {
  await withGateway(async (gateway, fake) => {
    const { key } = await gateway.createKey({ default_model: "llama-3" });
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(response.status, 200);
    await response.body?.cancel();
    assertEquals(fake.requests.at(-1)!.body!.model, "llama-3");
  });
});

Deno.test("keys: quota refuses with 429 insufficient_quota and never reaches the backend", async () => {
  await withGateway(async (gateway, fake) => {
    const { key } = await gateway.createKey({ quota_tokens: 50 });
    const client = gateway.client(key);
    const err = await assertRejects(
      () =>
        client.chat.completions.create({
          model: "gpt-test",
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 100,
        }),
      OpenAI.RateLimitError,
    );
    assertEquals((err.error as Record<string, unknown>).code, "insufficient_quota");
    assertEquals((err.error as Record<string, unknown>).type, "insufficient_quota");
    assertEquals(fake.requests.length, 0);
    // A request that fits is admitted.
    await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 10,
    });
    assertEquals(fake.requests.length, 1);
  });
});

Deno.test("keys: 100 parallel requests against a quota covering 10 never overspend the reservations", async () => {
  await withGateway(async (gateway, fake) => {
    // Each request reserves its prompt estimate + max_tokens 20; the quota covers 10 of them.
    const body: OpenAI.ChatCompletionCreateParamsNonStreaming = {
      model: "gpt-test",
      messages: [{ role: "user", content: "hello there" }],
      max_tokens: 20,
    };
    const perRequest = 3 + 4 + Math.ceil("hello there".length / 4) + 20;
    const { key, id } = await gateway.createKey({ quota_tokens: perRequest * 10 });
    const results = await Promise.allSettled(
      [...Array(100).keys()].map(() => gateway.client(key).chat.completions.create(body)),
    );
    const admitted = results.filter((r) => r.status === "fulfilled").length;
    const reasons = new Set(results.map((r) => r.status === "rejected" ? String(r.reason) : "ok"));
    // Reservations alone admit 10; the unused part of each is refunded when it settles, so
    // requests that arrive after a settlement may use what the earlier ones did not.
    assert(admitted >= 10, [...reasons].join("; "));
    assertEquals(fake.requests.length, admitted);
    for (const r of results) {
      if (r.status === "rejected") {
        assert(r.reason instanceof OpenAI.RateLimitError, String(r.reason));
      }
    }
    // Settlement runs after each response is sent; wait until every reservation is settled.
    const usage = async () => (await (await gateway.admin("GET", `/keys/${id}`)).json()).usage;
    await waitFor(async () => (await usage()).reserved_tokens === 0);
    const view = { usage: await usage() };
    const ledger = await (await gateway.admin("GET", `/requests?key=${id}&limit=500`)).json();
    const sum = ledger.data.reduce(
      (total: number, r: { total_tokens: number }) => total + r.total_tokens,
      0,
    );
    assertEquals(ledger.data.length, admitted);
    assertEquals(
      view.usage.used_tokens,
      sum,
      "used_tokens equals the sum of the key's ledger records",
    );
    assertEquals(view.usage.reserved_tokens, 0);
    assert(view.usage.used_tokens <= perRequest * 10, "the quota is never overspent");
    await checkAccounting(gateway, {
      keys: { [id]: { answered: admitted, overrun: 0 } },
      backends: { up: { answered: fake.requests.length } },
    });
  });
});

Deno.test("keys: daily request budget refuses the next request", async () => {
  await withGateway(async (gateway) => {
    const { key } = await gateway.createKey({ daily_requests: 2 });
    await ask(gateway.client(key));
    await ask(gateway.client(key));
    const err = await assertRejects(() => ask(gateway.client(key)), OpenAI.RateLimitError);
    assertEquals((err.error as Record<string, unknown>).code, "insufficient_quota");
  });
});

Deno.test("keys: daily budgets reset at 00:00 UTC", async () => {
  let clock = Date.parse("2026-11-24T23:59:00Z");
  await withGateway(
    async (gateway) => {
      const { key } = await gateway.createKey({ daily_requests: 1 });
      await ask(gateway.client(key));
      await assertRejects(() => ask(gateway.client(key)), OpenAI.RateLimitError);
      clock = Date.parse("2026-11-25T00:00:01Z");
      await ask(gateway.client(key));
    },
    "",
    { now: () => clock },
  );
});

Deno.test("keys: disable, rotate and delete take effect on the next request; rotation grace ends", async () => {
  let clock = Date.parse("2026-11-24T12:00:00Z");
  await withGateway(
    async (gateway) => {
      const { key, id } = await gateway.createKey();
      await ask(gateway.client(key));
      await gateway.admin("PATCH", `/keys/${id}`, { disabled: true });
      await assertRejects(() => ask(gateway.client(key)), OpenAI.AuthenticationError);
      await gateway.admin("PATCH", `/keys/${id}`, { disabled: false });
      await ask(gateway.client(key));

      const rotated =
        await (await gateway.admin("POST", `/keys/${id}/rotate`, { grace_seconds: 60 })).json();
      assert(rotated.key !== key);
      await ask(gateway.client(rotated.key));
      await ask(gateway.client(key)); // within the grace period
      clock += 61_000;
      await assertRejects(() => ask(gateway.client(key)), OpenAI.AuthenticationError);
      await ask(gateway.client(rotated.key));

      const again = await (await gateway.admin("POST", `/keys/${id}/rotate`)).json();
      await assertRejects(() => ask(gateway.client(rotated.key)), OpenAI.AuthenticationError);
      await ask(gateway.client(again.key));

      const deleted = await gateway.admin("DELETE", `/keys/${id}`);
      assertEquals(deleted.status, 200);
      await deleted.body?.cancel();
      await assertRejects(() => ask(gateway.client(again.key)), OpenAI.AuthenticationError);
      const gone = await gateway.admin("GET", `/keys/${id}`);
      assertEquals(gone.status, 404);
      await gone.body?.cancel();
    },
    "",
    { now: () => clock },
  );
});

Deno.test("keys: GET /v1/me shows the key's limits, remaining quota and today's usage", async () => {
  await withGateway(async (gateway) => {
    const { key, id } = await gateway.createKey({
      name: "alice",
      group: "paid",
      quota_tokens: 100_000,
      rpm: 60,
    });
    await ask(gateway.client(key));
    await waitFor(async () =>
      (await (await gateway.admin("GET", `/keys/${id}`)).json()).usage.reserved_tokens === 0
    );
    const response = await fetch(`${gateway.url}/v1/me`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const me = await response.json();
    assertEquals(me.id, id);
    assertEquals(me.name, "alice");
    assertEquals(me.group, "paid");
    assertEquals(me.limits.rpm, 60);
    assertEquals(me.usage.today.requests, 1);
    assert(me.usage.used_tokens > 0);
    assertEquals(me.remaining.quota_tokens, 100_000 - me.usage.used_tokens);
    assertEquals(JSON.stringify(me).includes(key), false);
  });
});

Deno.test("admin API: keys list in pages with a cursor and search by name or group", async () => {
  await withGateway(async (gateway) => {
    for (let i = 0; i < 5; i++) {
      await gateway.createKey({ name: `team-${i}`, group: i < 2 ? "paid" : "free" });
    }
    const seen: string[] = [];
    let cursor = "";
    for (let page = 0; page < 10; page++) {
      const body = await (await gateway.admin(
        "GET",
        `/keys?limit=2&search=team${cursor ? `&cursor=${cursor}` : ""}`,
      )).json();
      assert(body.data.length <= 2);
      seen.push(...body.data.map((k: { name: string }) => k.name));
      if (!body.next_cursor) break;
      cursor = encodeURIComponent(body.next_cursor);
    }
    assertEquals(seen.sort(), ["team-0", "team-1", "team-2", "team-3", "team-4"]);
    const paid = await (await gateway.admin("GET", "/keys?search=paid")).json();
    assertEquals(paid.data.map((k: { name: string }) => k.name).sort(), ["team-0", "team-1"]);
  });
});

Deno.test("admin /requests: newest first, filters key and model, pages with next_cursor, refuses a made-up cursor", async () => {
  await withGateway(async (gateway) => {
    const a = await gateway.createKey({});
    const b = await gateway.createKey({});
    for (const model of ["gpt-test", "gpt-other", "gpt-test", "llama-3", "gpt-test"]) {
      await ask(gateway.client(a.key), model);
    }
    await ask(gateway.client(b.key), "gpt-test");
    type Row = { key_id: string; model: string; request_id: string; time: string };
    const all = async (query: string) => {
      const rows: Row[] = [];
      let cursor = "";
      for (let page = 0; page < 20; page++) {
        const response = await gateway.admin("GET", `/requests?limit=2&${query}${cursor}`);
        assertEquals(response.status, 200);
        const body = await response.json();
        assert(body.data.length <= 2);
        rows.push(...body.data);
        if (body.next_cursor === null) return rows;
        cursor = `&cursor=${encodeURIComponent(body.next_cursor)}`;
      }
      throw new Error("paging did not end");
    };
    await waitFor(async () => (await all(`key=${a.id}`)).length === 5);
    const ofA = await all(`key=${a.id}`);
    assertEquals(ofA.map((r) => r.model), [
      "gpt-test",
      "llama-3",
      "gpt-test",
      "gpt-other",
      "gpt-test",
    ]);
    assert(ofA.every((r) => r.key_id === a.id));
    assertEquals(new Set(ofA.map((r) => r.request_id)).size, 5, "no record twice across pages");
    const gptTest = await all("model=gpt-test");
    assertEquals(gptTest.length, 4);
    assert(gptTest.every((r) => r.model === "gpt-test"));
    assertEquals((await all(`key=${b.id}&model=gpt-test`)).length, 1);
    const everything = await all("");
    assertEquals(everything.length, 6);
    const times = everything.map((r) => r.time);
    assertEquals(times, times.toSorted().reverse(), "newest first");
    const made = await gateway.admin("GET", "/requests?cursor=1.not-a-real-block");
    assertEquals(made.status, 200, "a well-formed cursor naming no block lists what is older");
    for (const bad of ["nonsense", "1.a/b", "-1.x"]) {
      const refused = await gateway.admin("GET", `/requests?cursor=${encodeURIComponent(bad)}`);
      assertEquals(refused.status, 400, bad);
      assertEquals((await refused.json()).error.param, "cursor");
    }
  });
});
