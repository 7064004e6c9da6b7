/** The HTTP edge of a gateway running as its own process: memory and file descriptors. */
import { assert, assertEquals } from "./assert.ts";
import { startGatewayProcess } from "./fakes/gateway_process.ts";
import { ADMIN_KEY } from "./helpers.ts";
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
