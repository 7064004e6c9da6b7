/** The HTTP edge of a gateway running as its own process: memory and file descriptors. */
import OpenAI from "openai";
import { assert, assertEquals } from "./assert.ts";
import { startGatewayProcess } from "./fakes/gateway_process.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { ADMIN_KEY, waitFor } from "./helpers.ts";
import { chunk, RawConnection } from "./raw_http.ts";

const MiB = 1024 * 1024;

async function login(url: string, key: string): Promise<number> {
  const response = await fetch(`${url}/admin/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ api_key: key }),
    redirect: "manual",
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("gateway process: a 50 MB chunked login body is refused with 413 and memory stays flat", async () => {
  const gateway = await startGatewayProcess("");
  try {
    // The login path runs a few times first, so what it allocates once is there before measuring.
    for (let i = 0; i < 3; i++) assertEquals(await login(gateway.url, "wrong"), 401);
    const before = await gateway.rssKiB();
    let peak = before;
    const conn = await RawConnection.open(gateway.url);
    await conn.send(
      "POST /admin/login HTTP/1.1\r\nhost: gateway\r\n" +
        "content-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    let answered = false;
    const response = conn.response().finally(() => {
      answered = true;
      // Ends a write the server no longer reads.
      conn.close();
    });
    const piece = chunk("a".repeat(64 * 1024));
    let sent = 0;
    while (!answered && sent < 50 * MiB && await conn.send(piece)) {
      sent += 64 * 1024;
      if (sent % (5 * MiB) === 0) peak = Math.max(peak, await gateway.rssKiB());
    }
    if (!answered) await conn.send("0\r\n\r\n");
    const refused = await response;
    peak = Math.max(peak, await gateway.rssKiB());
    assertEquals(refused.status, 413);
    assert(
      peak - before < 8 * 1024,
      `RSS grew by ${Math.round((peak - before) / 1024)} MiB (${sent} bytes sent)`,
    );
    assert(gateway.alive());
    assertEquals(await login(gateway.url, ADMIN_KEY), 303, "the gateway still logs people in");
  } finally {
    await gateway.stop();
  }
});

Deno.test("gateway process: running out of file descriptors never stops it; it serves again once they free up", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startGatewayProcess(
    `backends:\n  - { name: up, type: vllm, base_url: "${fake.url}", models: [slow-stream] }\n`,
    { nofile: 128 },
  );
  const idle: RawConnection[] = [];
  try {
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    const created = await fetch(`${gateway.url}/admin/api/keys`, {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ name: "streamer" }),
    });
    const { key } = await created.json();
    // A stream in flight before descriptors run out keeps flowing through it all.
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "slow-stream",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const chunks = stream[Symbol.asyncIterator]();
    assert(!(await chunks.next()).done);

    // Connections that never send a byte, until accepting one fails (128 descriptors).
    const failed = () => gateway.logs.some((line) => line.includes("accept failed"));
    for (let i = 0; i < 400 && !failed(); i++) {
      try {
        idle.push(await RawConnection.open(gateway.url));
      } catch {
        // Refused while the gateway listens again: keep pressing.
      }
    }
    await waitFor(failed, 10_000);
    assert(gateway.alive(), "the gateway exited");
    const line = JSON.parse(gateway.logs.find((l) => l.includes("accept failed"))!);
    assertEquals(line.message, "accept failed: too many open files");
    // Idle connections are let go so the descriptors come back.
    assert(await idle[0].closedWithin(5_000), "an idle connection was kept open");

    for (const conn of idle) conn.close();
    await waitFor(async () => {
      const health = await fetch(`${gateway.url}/healthz`).catch(() => null);
      await health?.body?.cancel();
      return health?.status === 200;
    }, 10_000);
    for (let i = 0; i < 3; i++) assert(!(await chunks.next()).done, "the stream was cut");
    stream.controller.abort();

    const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: admin })).text();
    const count = /^modelgate_listener_errors_total\{phase="accept"\} (\d+)$/m.exec(metrics);
    assert(count && Number(count[1]) >= 1, metrics);
    assert(gateway.alive());
  } finally {
    for (const conn of idle) conn.close();
    await gateway.stop();
    await fake.close();
  }
});
