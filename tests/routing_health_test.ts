/** Fleet routing end to end: ejection, readmission, readiness, and what operators see. */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { ask, entry, withFleet } from "./fakes/fleet.ts";
import { ADMIN_KEY, waitFor } from "./helpers.ts";
import { runCli } from "../src/cli/main.ts";

const TWO = { a: ["llama3.2"], b: ["llama3.2"] };

Deno.test("ejection: with one of two backends down clients see no error; it is ejected after 3 failures", async () => {
  await withFleet(
    TWO,
    (b) =>
      `backends:\n${entry(b.a)}${entry(b.b)}
routing:
  health: { interval_seconds: 0, failures_to_eject: 3, eject_seconds: 60 }
`,
    async ({ backends, gateway, view, metrics }) => {
      await backends.a.refuse();
      const client = gateway.client();
      for (let i = 0; i < 10; i++) {
        const answer = await ask(client, "llama3.2");
        assertEquals(answer.choices[0].message.content, "Hello from b");
      }
      const a = await view("a");
      assertEquals([a.state, a.healthy, a.consecutive_failures], ["ejected", false, 3]);
      assert(typeof a.ejected_until === "string" && Date.parse(a.ejected_until) > Date.now());
      assertStringIncludes(String(a.last_error), '"a" could not be reached');
      const text = await metrics();
      assertStringIncludes(
        text,
        'modelgate_backend_attempts_total{backend="a",result="upstream_error"} 3',
      );
      assertStringIncludes(
        text,
        'modelgate_backend_attempts_total{backend="b",result="success"} 10',
      );
      assertStringIncludes(text, 'modelgate_backend_up{backend="a"} 0');
      assert(gateway.logs.some((l) => l.includes('"backend ejected"') && l.includes('"a"')));
    },
  );
});

Deno.test("ejection: a returning backend is readmitted by its probe, and /readyz follows", async () => {
  await withFleet(
    TWO,
    (b) =>
      `backends:\n${entry(b.a)}${entry(b.b)}
routing:
  health: { interval_seconds: 0.1, failures_to_eject: 2, eject_seconds: 300 }
`,
    async ({ backends, gateway, view }) => {
      const ready = async () => {
        const response = await fetch(`${gateway.url}/readyz`);
        return { status: response.status, body: await response.json() };
      };
      assertEquals((await ready()).body.backends_up, 2);
      await backends.a.refuse();
      await backends.b.refuse();
      // The probes alone find them: no request was sent.
      await waitFor(async () => (await ready()).status === 503, 10_000);
      assertEquals((await ready()).body.status, "no_backend");
      assertEquals([(await view("a")).state, (await view("b")).state], ["ejected", "ejected"]);
      const down = await ask(gateway.client(), "llama3.2").catch((e) => e);
      assertEquals(down.status, 503);
      assert(Number(down.headers.get("retry-after")) >= 1);

      backends.a.restore();
      // Ejected for 300 s, but the first good probe readmits it.
      await waitFor(async () => (await view("a")).state === "healthy", 10_000);
      assertEquals((await ready()).status, 200);
      assertEquals((await ready()).body.backends_up, 1);
      const answer = await ask(gateway.client(), "llama3.2");
      assertEquals(answer.choices[0].message.content, "Hello from a");
      assert(gateway.logs.some((l) => l.includes('"backend readmitted"')));
    },
  );
});

Deno.test("ejection: when the ejection runs out, one successful request readmits the backend", async () => {
  let offset = 0;
  await withFleet(
    TWO,
    (b) =>
      `backends:\n${entry(b.a)}${entry(b.b)}
routing:
  health: { interval_seconds: 0, failures_to_eject: 1, eject_seconds: 10 }
`,
    async ({ backends, gateway, view }) => {
      backends.a.failWith = 500;
      await ask(gateway.client(), "llama3.2");
      assertEquals((await view("a")).state, "ejected");
      await ask(gateway.client(), "llama3.2");
      assertEquals(backends.a.received.length, 1, "an ejected backend gets nothing");
      backends.a.failWith = null;
      offset += 10_000;
      assertEquals((await view("a")).state, "healthy");
      const answer = await ask(gateway.client(), "llama3.2");
      assertEquals(answer.choices[0].message.content, "Hello from a");
      assertEquals((await view("a")).consecutive_failures, 0);
    },
    { now: () => Date.now() + offset },
  );
});

Deno.test("visible: admin API, /metrics and the CLI show state, in-flight/max and the queue", async () => {
  await withFleet(
    { gpu: ["llama3.2"], spare: ["llama3.2"] },
    (b) => `backends:\n${entry(b.gpu, { max_concurrency: 1 })}${entry(b.spare, { weight: 0 })}`,
    async ({ backends, gateway, view, metrics }) => {
      backends.gpu.hold();
      const client = gateway.client();
      const pending = [ask(client, "llama3.2"), ask(client, "llama3.2")];
      await waitFor(async () => (await view("gpu")).queued === 1);
      const gpu = await view("gpu");
      assertEquals(
        [gpu.state, gpu.in_flight, gpu.max_concurrency, gpu.queued, gpu.ejected_until],
        ["healthy", 1, 1, 1, null],
      );
      assertEquals(gpu.models, ["llama3.2"]);
      const spare = await view("spare");
      assertEquals([spare.max_concurrency, spare.weight, spare.queued], [null, 0, 0]);

      const models = (await (await gateway.admin("GET", "/models")).json()).data;
      assertEquals(models, [{
        id: "llama3.2",
        backends: ["gpu", "spare"],
        aliases: [],
        fallbacks: [],
        queued: 1,
        created: models[0].created,
      }]);
      const text = await metrics();
      for (
        const line of [
          'modelgate_backend_up{backend="gpu"} 1',
          'modelgate_backend_in_flight{backend="gpu"} 1',
          'modelgate_backend_in_flight{backend="spare"} 0',
          'modelgate_queue_depth{model="llama3.2"} 1',
        ]
      ) assertStringIncludes(text, line);

      const out: string[] = [];
      const code = await runCli(
        ["backends", "--url", gateway.url, "--admin-key", ADMIN_KEY],
        { out: (t) => out.push(t), err: (t) => out.push(t) },
      );
      assertEquals(code, 0);
      const lines = out.join("\n").split("\n");
      assertEquals(lines[0].split(/\s+/).slice(0, 5), [
        "NAME",
        "TYPE",
        "STATE",
        "IN-FLIGHT",
        "QUEUED",
      ]);
      assertEquals(lines[1].split(/\s+/).slice(0, 5), ["gpu", "vllm", "healthy", "1/1", "1"]);
      assertEquals(lines[2].split(/\s+/).slice(0, 5), ["spare", "vllm", "healthy", "0/∞", "0"]);
      backends.gpu.release();
      await Promise.all(pending);
    },
  );
});

Deno.test("bad config: a fallback cycle stops main.ts serve with one line naming the place", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(
      path,
      `backends:
  - { name: gpu, type: vllm, base_url: "http://127.0.0.1:9", models: [a, b] }
groups:
  paid:
    fallbacks: { a: [b], b: [a] }
`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "main.ts", "serve", "--config", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(output.code, 2);
    assertEquals(
      new TextDecoder().decode(output.stderr).trim(),
      'modelgate: Invalid config at "groups.paid.fallbacks.b": fallbacks form a cycle: a -> b -> a',
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("bad config: a group glob that matches no backend is logged as a warning at start", async () => {
  await withFleet(
    { gpu: ["llama3.2"] },
    (b) => `backends:\n${entry(b.gpu)}groups:\n  free: { backends: ["local-*", "gpu"] }\n`,
    async ({ gateway, client }) => {
      assert(
        gateway.logs.some((l) =>
          l.includes('"warn"') &&
          l.includes(
            'Config warning at \\"groups.free.backends[0]\\": \\"local-*\\" matches no backend',
          )
        ),
        gateway.logs.join("\n"),
      );
      const answer = await ask(await client({ group: "free" }), "llama3.2");
      assertEquals(answer.choices[0].message.content, "Hello from gpu");
    },
  );
});

Deno.test("probes: a backend without a models list is rediscovered on every probe", async () => {
  await withFleet(
    { gpu: ["llama3.2"] },
    (b) =>
      `backends:\n  - { name: gpu, type: vllm, base_url: "${b.gpu.url}" }
routing:
  health: { interval_seconds: 0.1 }
`,
    async ({ backends, gateway }) => {
      const ids = async () => (await gateway.client().models.list()).data.map((m) => m.id);
      assertEquals(await ids(), ["llama3.2"]);
      backends.gpu.models.push("qwen3");
      await waitFor(async () => (await ids()).includes("qwen3"), 10_000);
      const answer = await ask(gateway.client(), "qwen3");
      assertEquals(answer.choices[0].message.content, "Hello from gpu");
    },
  );
});
