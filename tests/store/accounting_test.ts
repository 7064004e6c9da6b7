import { assert, assertEquals } from "../assert.ts";
import { startFakeOpenAi } from "../fakes/openai_backend.ts";
import { startTestGateway, type TestGateway, waitFor } from "../helpers.ts";
import { checkAccounting } from "./invariant.ts";

/** Runs `work` over `items`, at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const lanes = [...Array(limit).keys()].map(async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(lanes);
}

/** Every ledger record of the gateway, page by page. */
async function allRecords(gateway: TestGateway) {
  const records: { key_id: string; total_tokens: number; prompt_tokens: number }[] = [];
  let cursor = "";
  for (let page = 0; page < 100; page++) {
    const query = `/requests?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const body = await (await gateway.admin("GET", query)).json();
    records.push(...body.data);
    if (!body.next_cursor) return records;
    cursor = body.next_cursor;
  }
  throw new Error("too many pages");
}

Deno.test("accounting: 1,000 keys sending at once: every record arrives and each key's used tokens, records and aggregates agree", async () => {
  const fake = await startFakeOpenAi({ models: ["gpt-test"] });
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
  try {
    const keys: { key: string; id: string }[] = [];
    await inParallel([...Array(1000).keys()], 50, async (i) => {
      keys.push(await gateway.createKey({ name: `k${i}`, quota_tokens: 1_000_000 }));
    });
    const statuses = await Promise.all(keys.map(async ({ key }, i) => {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-test",
          messages: [{ role: "user", content: `question ${"x".repeat(i % 50)}` }],
        }),
      });
      await response.body?.cancel();
      return response.status;
    }));
    assertEquals(statuses.filter((status) => status !== 200), []);

    // Records are written after each response is sent; wait until the last one has landed.
    let records = await allRecords(gateway);
    await waitFor(async () => (records = await allRecords(gateway)).length >= 1000, 20_000);
    const byKey = new Map<string, { tokens: number; prompt: number; count: number }>();
    for (const record of records) {
      const total = byKey.get(record.key_id) ?? { tokens: 0, prompt: 0, count: 0 };
      total.tokens += record.total_tokens;
      total.prompt += record.prompt_tokens;
      total.count++;
      byKey.set(record.key_id, total);
    }
    const usage = (await (await gateway.admin("GET", "/usage?group_by=day&by=key")).json()).data;
    const aggregates = new Map<string, { requests: number; prompt_tokens: number }>(
      usage.map((row: { subject: string }) => [row.subject, row]),
    );
    await inParallel(keys, 50, async ({ id }) => {
      const view = await (await gateway.admin("GET", `/keys/${id}`)).json();
      const fromRecords = byKey.get(id);
      assert(fromRecords, `key ${id} has its record`);
      assertEquals(fromRecords.count, 1);
      assertEquals(view.usage.used_tokens, fromRecords.tokens, "used tokens = sum of records");
      assertEquals(aggregates.get(id)?.requests, 1);
      assertEquals(aggregates.get(id)?.prompt_tokens, fromRecords.prompt);
    });
    assertEquals(records.filter((r) => keys.some((k) => k.id === r.key_id)).length, 1000);
    await checkAccounting(gateway, {
      keys: Object.fromEntries(keys.map(({ id }) => [id, { answered: 1, overrun: 0 }])),
      backends: { up: { answered: fake.requests.filter((r) => r.method === "POST").length } },
    });
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});
