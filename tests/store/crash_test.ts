import { assert, assertEquals } from "../assert.ts";
import { startFakeOpenAi } from "../fakes/openai_backend.ts";
import { ADMIN_KEY, startTestGateway, waitFor } from "../helpers.ts";
import { checkAccounting } from "./invariant.ts";

/** `main.ts serve` in a child process, with its URL read from the start-up log line. */
async function startChild(configPath: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "serve", "--config", configPath],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const match = text.match(/"message":"modelgate listening","url":"([^"]+)"/);
    if (match) {
      // Keep draining stderr so the child never blocks on a full pipe.
      (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
      })();
      return { child, url: match[1] };
    }
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`the child gateway did not start: ${text}`);
}

Deno.test("crash: after kill -9, finished requests are on the ledger and the dead instance's reservations expire after the lease TTL", async () => {
  const dir = await Deno.makeTempDir();
  const fake = await startFakeOpenAi({ models: ["gpt-test", "slow-stream"] });
  const yaml = `
server: { port: 0, host: 127.0.0.1 }
admin: { api_key: "${ADMIN_KEY}" }
storage: { kv: "${dir}/modelgate.kv" }
discovery: { interval_seconds: 0 }
quota: { lease_ttl_seconds: 30 }
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test, slow-stream] }
`;
  await Deno.writeTextFile(`${dir}/config.yaml`, yaml);
  const { child, url } = await startChild(`${dir}/config.yaml`);
  const streams: Promise<void>[] = [];
  let offset = 0;
  try {
    const admin = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" };
    const created = await (await fetch(`${url}/admin/api/keys`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name: "victim", quota_tokens: 100_000 }),
    })).json();
    const auth = { authorization: `Bearer ${created.key}`, "content-type": "application/json" };
    const chat = (model: string, extra: Record<string, unknown> = {}) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], ...extra }),
      });
    for (let i = 0; i < 5; i++) {
      const done = await chat("gpt-test");
      assertEquals(done.status, 200);
      await done.body?.cancel();
    }
    // 20 streams with max_tokens 4,000 stay open when the instance dies.
    for (let i = 0; i < 20; i++) {
      streams.push(
        chat("slow-stream", { stream: true, max_tokens: 4000 }).then(async (response) => {
          await response.body?.pipeTo(new WritableStream()).catch(() => {});
        }, () => {}),
      );
    }
    await waitFor(() => fake.requests.filter((r) => r.body?.model === "slow-stream").length === 20);
    // Records are written every 100 ms: give the timer a generous margin, then kill.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    child.kill("SIGKILL");
    await child.status;
    await Promise.all(streams);

    const reopened = await startTestGateway(yaml, { now: () => Date.now() + offset });
    try {
      const view = await (await reopened.admin("GET", `/keys/${created.record.id}`)).json();
      const records = (await (await reopened.admin("GET", `/requests?key=${created.record.id}`))
        .json()).data;
      assertEquals(records.length, 5, "every request finished 1 s before the kill is recorded");
      assertEquals(
        view.usage.used_tokens,
        records.reduce((s: number, r: { total_tokens: number }) => s + r.total_tokens, 0),
      );
      assert(view.usage.reserved_tokens >= 80_000, `still held: ${view.usage.reserved_tokens}`);
      const big = (key: string) =>
        fetch(`${reopened.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({
            model: "gpt-test",
            messages: [{ role: "user", content: "hi" }],
            max_tokens: 30_000,
          }),
        });
      const refused = await big(created.key);
      assertEquals(refused.status, 429);
      assertEquals((await refused.json()).error.code, "insufficient_quota");
      offset = 31_000;
      const admitted = await big(created.key);
      assertEquals(admitted.status, 200, "the dead instance's lease has expired");
      await admitted.body?.cancel();
      // 5 finished before the kill, 20 in flight at it (may be lost), 1 after it.
      const lost = { answered: 26, mayBeLost: 20 };
      await checkAccounting({ admin: reopened.admin, now: () => Date.now() + offset }, {
        keys: { [created.record.id]: lost },
        backends: { up: { ...lost, answered: fake.requests.filter((r) => r.body).length } },
      });
    } finally {
      await reopened.shutdown();
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});
