/** Fleet routing end to end: quota, the ledger and rate-limit leases across retries and queues. */
import OpenAI from "openai";
import { assert, assertEquals } from "./assert.ts";
import { ask, entry, type Fleet, withFleet } from "./fakes/fleet.ts";
import { waitFor } from "./helpers.ts";
import { checkAccounting } from "./store/invariant.ts";

/** The key's ledger records (newest first) once `count` are written. */
async function ledger(fleet: Fleet, id: string, count: number) {
  const read = async () =>
    (await (await fleet.gateway.admin("GET", `/requests?key=${id}`)).json()).data;
  await waitFor(async () => (await read()).length === count);
  return await read();
}

async function usageOf(fleet: Fleet, id: string) {
  const read = async () => (await (await fleet.gateway.admin("GET", `/keys/${id}`)).json()).usage;
  await waitFor(async () => (await read()).reserved_tokens === 0);
  return await read();
}

Deno.test("accounting: quota and the ledger are exact across retries and fallbacks", async () => {
  await withFleet(
    { a: ["llama3.2"], b: ["llama3.2"], cloud: ["gpt-4o-mini"] },
    (b) => `
backends:
${entry(b.a, { max_concurrency: 1 })}${entry(b.b, { max_concurrency: 1 })}${entry(b.cloud)}
models:
  llama3.2: { price: { input: 1, output: 1 } }
  gpt-4o-mini: { price: { input: 1000, output: 2000 } }
groups:
  paid: { max_queue_ms: 0, fallbacks: { llama3.2: [gpt-4o-mini] } }
`,
    async (fleet) => {
      const { backends, gateway } = fleet;
      const { key, id } = await gateway.createKey({ group: "paid", quota_tokens: 100_000 });
      const client = gateway.client(key);
      // a fails before its first byte; b answers: one record, charged b's usage once.
      backends.a.failWith = 502;
      const retried = await ask(client, "llama3.2");
      assertEquals(retried.choices[0].message.content, "Hello from b");
      const [first] = await ledger(fleet, id, 1);
      assertEquals(
        [first.backend, first.model, first.status, first.outcome],
        ["b", "llama3.2", 200, "completed"],
      );
      assertEquals(first.total_tokens, retried.usage!.total_tokens);
      assertEquals((await usageOf(fleet, id)).used_tokens, retried.usage!.total_tokens);

      // Both local backends busy: paid goes to its fallback and pays the fallback's price.
      backends.a.failWith = null;
      backends.a.hold();
      backends.b.hold();
      const holders = [ask(gateway.client(), "llama3.2"), ask(gateway.client(), "llama3.2")];
      await waitFor(() => backends.a.held + backends.b.held === 2);
      const spilled = await ask(client, "llama3.2");
      assertEquals(spilled.choices[0].message.content, "Hello from cloud");
      const [second] = await ledger(fleet, id, 2);
      assertEquals([second.backend, second.model], ["cloud", "gpt-4o-mini"]);
      const usage = spilled.usage!;
      assertEquals(
        second.cost,
        (usage.prompt_tokens * 1000 + usage.completion_tokens * 2000) / 1e6,
      );
      const total = (await usageOf(fleet, id)).used_tokens;
      assertEquals(total, retried.usage!.total_tokens + usage.total_tokens);
      backends.a.release();
      backends.b.release();
      await Promise.all(holders);
      await checkAccounting(gateway, { keys: { [id]: { answered: 2, overrun: 0 } } });
    },
  );
});

Deno.test("accounting: all attempts failing is recorded once, with the last backend, and charged nothing", async () => {
  await withFleet(
    { a: ["llama3.2"], b: ["llama3.2"] },
    (b) => `backends:\n${entry(b.a)}${entry(b.b)}`,
    async (fleet) => {
      const { backends, gateway } = fleet;
      const { key, id } = await gateway.createKey({ quota_tokens: 100_000 });
      backends.a.failWith = 500;
      backends.b.failWith = 503;
      const err = await ask(gateway.client(key), "llama3.2").catch((e) => e);
      assert(err instanceof OpenAI.APIError, String(err));
      assertEquals(err.status, 502);
      const [record] = await ledger(fleet, id, 1);
      assertEquals([record.backend, record.outcome, record.total_tokens], [
        "b",
        "upstream_error",
        0,
      ]);
      assertEquals((await usageOf(fleet, id)).used_tokens, 0);
      await checkAccounting(gateway, {
        keys: { [id]: { answered: 1 } },
        backends: { a: { answered: 0 }, b: { answered: 1 } },
      });
    },
  );
});

Deno.test("accounting: a key's concurrency lease is held while it waits in the queue", async () => {
  await withFleet(
    { gpu: ["llama3.2"] },
    (b) => `backends:\n${entry(b.gpu, { max_concurrency: 1 })}`,
    async ({ backends, gateway, view }) => {
      const { key } = await gateway.createKey({ max_concurrency: 1, rpm: null, burst: null });
      const client = gateway.client(key);
      backends.gpu.hold();
      const holder = ask(gateway.client(), "llama3.2");
      await waitFor(() => backends.gpu.held === 1);
      const queued = ask(client, "llama3.2");
      await waitFor(async () => (await view("gpu")).queued === 1);
      const refused = await ask(client, "llama3.2").catch((e) => e);
      assert(refused instanceof OpenAI.RateLimitError, String(refused));
      backends.gpu.release();
      await Promise.all([holder, queued]);
      // Released on the way out: the key may send again.
      const again = await ask(client, "llama3.2");
      assertEquals(again.choices[0].message.content, "Hello from gpu");
    },
  );
});
