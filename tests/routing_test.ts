/** Fleet routing end to end: which backends, choice, queueing, failover and fallbacks. */
import OpenAI from "openai";
import { assert, assertEquals } from "./assert.ts";
import { ask, entry, withFleet } from "./fakes/fleet.ts";
import type { FleetBackend } from "./fakes/fleet_backend.ts";
import { freePaidGroups } from "./fixtures/free_paid.ts";
import { waitFor } from "./helpers.ts";

const LOCAL_AND_CLOUD = { "local-a": ["llama3.2"], cloud: ["gpt-4o-mini"] };

/** The free/paid example: free waits for the local GPU, paid spills to the cloud at once. */
function freeAndPaid(b: Record<string, FleetBackend>, freeWaitMs = 60_000) {
  return `
backends:
${entry(b["local-a"], { max_concurrency: 1 })}${entry(b.cloud)}
${freePaidGroups(freeWaitMs)}`;
}

const ids = async (client: OpenAI) => (await client.models.list()).data.map((m) => m.id).sort();

Deno.test("routing: a group lists and reaches only its backends, with its own aliases", async () => {
  await withFleet(LOCAL_AND_CLOUD, (b) => freeAndPaid(b), async ({ backends, client, gateway }) => {
    const free = await client({ group: "free" });
    const paid = await client({ group: "paid" });
    assertEquals(await ids(free), ["chat", "llama3.2"]);
    assertEquals(await ids(paid), ["chat", "gpt-4o-mini", "llama3.2"]);
    assertEquals(await ids(gateway.client()), ["gpt-4o-mini", "llama3.2"]);

    const answer = await ask(free, "chat");
    assertEquals(answer.choices[0].message.content, "Hello from local-a");
    assertEquals(backends["local-a"].received.map((r) => r.model), ["llama3.2"]);

    const hidden = await ask(free, "gpt-4o-mini").catch((e) => e);
    assert(hidden instanceof OpenAI.NotFoundError, String(hidden));
    assertEquals((hidden.error as Record<string, unknown>).code, "model_not_found");
    assertEquals(backends.cloud.received.length, 0, "free never reaches the cloud");
    const other = await ask(gateway.client(), "chat").catch((e) => e);
    assert(other instanceof OpenAI.NotFoundError, "a group's alias is not everyone's");
  });
});

Deno.test("routing: max_concurrency 2 is never exceeded under 20 concurrent requests", async () => {
  const spec = { a: ["llama3.2"], b: ["llama3.2"] };
  await withFleet(
    spec,
    (b) => `backends:\n${entry(b.a, { max_concurrency: 2 })}${entry(b.b, { max_concurrency: 2 })}`,
    async ({ backends, gateway }) => {
      backends.a.delayMs = 20;
      backends.b.delayMs = 20;
      const client = gateway.client();
      const answers = await Promise.all([...Array(20).keys()].map(() => ask(client, "llama3.2")));
      assertEquals(answers.length, 20);
      assertEquals([backends.a.peak, backends.b.peak], [2, 2]);
      assertEquals(backends.a.received.length + backends.b.received.length, 20);
    },
  );
});

Deno.test("routing: least_busy sends each request to the backend with fewer in flight", async () => {
  await withFleet(
    { a: ["llama3.2"], b: ["llama3.2"] },
    (b) => `backends:\n${entry(b.a)}${entry(b.b)}`,
    async ({ backends, gateway }) => {
      backends.a.hold();
      backends.b.hold();
      const client = gateway.client();
      const pending = [];
      for (let i = 0; i < 6; i++) {
        pending.push(ask(client, "llama3.2"));
        await waitFor(() => backends.a.held + backends.b.held === i + 1);
      }
      assertEquals([backends.a.held, backends.b.held], [3, 3]);
      backends.a.release();
      backends.b.release();
      await Promise.all(pending);
    },
  );
});

Deno.test("routing: a high-priority request queued behind low-priority ones is served first", async () => {
  await withFleet(
    { gpu: ["llama3.2"] },
    (b) => `
backends:
${entry(b.gpu, { max_concurrency: 1 })}
groups:
  low: { priority: low }
  high: { priority: high }
`,
    async ({ backends, client, view }) => {
      const low = await client({ group: "low" });
      const high = await client({ group: "high" });
      backends.gpu.hold();
      const all = [ask(low, "llama3.2", "first")];
      await waitFor(() => backends.gpu.held === 1);
      for (const [c, tag] of [[low, "low-1"], [low, "low-2"], [high, "high-1"]] as const) {
        all.push(ask(c, "llama3.2", tag));
        const queued = all.length - 1;
        await waitFor(async () => (await view("gpu")).queued === queued);
      }
      backends.gpu.release();
      await Promise.all(all);
      assertEquals(backends.gpu.received.map((r) => r.tag), ["first", "high-1", "low-1", "low-2"]);
      assertEquals(backends.gpu.peak, 1);
    },
  );
});

Deno.test("routing: a client that leaves while queued leaves the queue and is charged nothing", async () => {
  await withFleet(
    { gpu: ["llama3.2"] },
    (b) => `backends:\n${entry(b.gpu, { max_concurrency: 1 })}`,
    async ({ backends, gateway, view }) => {
      backends.gpu.hold();
      const first = ask(gateway.client(), "llama3.2", "first");
      await waitFor(() => backends.gpu.held === 1);
      const { key, id } = await gateway.createKey({ name: "leaver" });
      const leaving = new AbortController();
      const gone = fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hi" }] }),
        signal: leaving.signal,
      }).catch((e) => e);
      await waitFor(async () => (await view("gpu")).queued === 1);
      leaving.abort();
      await gone;
      await waitFor(async () => (await view("gpu")).queued === 0);
      backends.gpu.release();
      await first;
      assertEquals(backends.gpu.received.map((r) => r.tag), ["first"]);
      const records = async () =>
        (await (await gateway.admin("GET", `/requests?key=${id}`)).json()).data;
      await waitFor(async () => (await records()).length === 1);
      const [record] = await records();
      assertEquals([record.outcome, record.total_tokens], ["client_cancelled", 0]);
      const usage = (await (await gateway.admin("GET", `/keys/${id}`)).json()).usage;
      assertEquals([usage.used_tokens, usage.reserved_tokens], [0, 0]);
    },
  );
});

Deno.test("routing: paid spills to its fallback at once while free waits for the local server", async () => {
  await withFleet(LOCAL_AND_CLOUD, (b) => freeAndPaid(b), async ({ backends, client, view }) => {
    const free = await client({ group: "free" });
    const paid = await client({ group: "paid" });
    backends["local-a"].hold();
    const first = ask(free, "chat", "first");
    await waitFor(() => backends["local-a"].held === 1);
    const spilled = await ask(paid, "chat", "paid");
    assertEquals(spilled.choices[0].message.content, "Hello from cloud");
    assertEquals(backends.cloud.received.map((r) => [r.model, r.tag]), [["gpt-4o-mini", "paid"]]);
    const waiting = ask(free, "chat", "free");
    await waitFor(async () => (await view("local-a")).queued === 1);
    backends["local-a"].release();
    const [, served] = await Promise.all([first, waiting]);
    assertEquals(served.choices[0].message.content, "Hello from local-a");
    assertEquals(backends.cloud.received.length, 1, "free is never sent to the cloud");
  });
});

Deno.test("routing: when the wait ends with nothing left, 503 no_backend_available with Retry-After", async () => {
  await withFleet(LOCAL_AND_CLOUD, (b) => freeAndPaid(b, 150), async ({ backends, gateway }) => {
    const { key } = await gateway.createKey({ group: "free" });
    backends["local-a"].hold();
    const first = ask(gateway.client(key), "chat");
    await waitFor(() => backends["local-a"].held === 1);
    const started = Date.now();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(response.status, 503);
    assert(Date.now() - started >= 140, "it waited for max_queue_ms first");
    assertEquals(response.headers.get("retry-after"), "1");
    assertEquals((await response.json()).error.code, "no_backend_available");
    backends["local-a"].release();
    await first;
  });
});

Deno.test("failover: the SDK sees one clean answer when the first backend fails before its first byte", async () => {
  await withFleet(
    { a: ["llama3.2"], b: ["llama3.2"] },
    (b) => `backends:\n${entry(b.a)}${entry(b.b)}`,
    async ({ backends, gateway }) => {
      const client = gateway.client();
      backends.a.failWith = 503;
      const answer = await ask(client, "llama3.2");
      assertEquals(answer.choices[0].message.content, "Hello from b");
      backends.a.failWith = 429;
      const stream = await client.chat.completions.create({
        model: "llama3.2",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      assertEquals(text, "Hello from b");
      assertEquals(backends.a.received.length, 2, "a was tried first each time");
      // A backend's own 4xx is the client's problem: returned, never retried.
      backends.a.failWith = 400;
      const refused = await ask(client, "llama3.2").catch((e) => e);
      assert(refused instanceof OpenAI.BadRequestError, String(refused));
      assertEquals([backends.a.received.length, backends.b.received.length], [3, 2]);
    },
  );
});

Deno.test("failover: a backend that stalls before its headers times out and the request moves on", async () => {
  await withFleet(
    { a: ["llama3.2"], b: ["llama3.2"] },
    (b) => `backends:\n${entry(b.a, { timeouts: { first_byte_ms: 200 } })}${entry(b.b)}`,
    async ({ backends, gateway, view }) => {
      backends.a.hold();
      const answer = await ask(gateway.client(), "llama3.2");
      assertEquals(answer.choices[0].message.content, "Hello from b");
      const a = await view("a");
      assertEquals(a.consecutive_failures, 1);
      assertEquals(a.in_flight, 0);
    },
  );
});

Deno.test("failover: a backend that drops the connection before answering is skipped", async () => {
  // A raw TCP server that accepts and closes at once, as a crashing model server does.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let dropped = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      dropped++;
      conn.close();
    }
  })();
  try {
    await withFleet(
      { b: ["llama3.2"] },
      (b) =>
        `backends:
  - { name: a, type: vllm, base_url: "http://127.0.0.1:${port}", models: [llama3.2] }
${entry(b.b)}`,
      async ({ gateway, view }) => {
        const answer = await ask(gateway.client(), "llama3.2");
        assertEquals(answer.choices[0].message.content, "Hello from b");
        assert(dropped >= 1, "a was tried first");
        assertEquals((await view("a")).consecutive_failures, 1);
      },
    );
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});
