/** The HTTP edge: bounded bodies, the admin login under attack, sessions, paths, hostile input. */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { ADMIN_KEY, startTestGateway } from "./helpers.ts";
import { chunk, RawConnection } from "./raw_http.ts";

const FORM = "application/x-www-form-urlencoded";

Deno.test("admin login: a form over 8 KiB gets 413, by Content-Length or as it streams", async () => {
  const gateway = await startTestGateway("");
  try {
    const big = `api_key=${"k".repeat(9000)}`;
    const declared = await fetch(`${gateway.url}/admin/login`, {
      method: "POST",
      headers: { "content-type": FORM },
      body: big,
    });
    assertEquals(declared.status, 413);
    assertStringIncludes(declared.headers.get("content-type") ?? "", "text/html");
    assertStringIncludes(await declared.text(), "larger than the limit of 8192 bytes");

    const conn = await RawConnection.open(gateway.url);
    try {
      await conn.send(
        `POST /admin/login HTTP/1.1\r\nhost: gateway\r\ncontent-type: ${FORM}\r\n` +
          "transfer-encoding: chunked\r\n\r\n",
      );
      for (let i = 0; i < 3; i++) await conn.send(chunk("k".repeat(4000)));
      assertEquals((await conn.response()).status, 413);
    } finally {
      conn.close();
    }
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("admin login: only a url-encoded form is read; other bodies get 415", async () => {
  const gateway = await startTestGateway("");
  try {
    for (const type of ["application/json", "multipart/form-data; boundary=x", "text/plain"]) {
      const response = await fetch(`${gateway.url}/admin/login`, {
        method: "POST",
        headers: { "content-type": type },
        body: `api_key=${ADMIN_KEY}`,
        redirect: "manual",
      });
      assertEquals(response.status, 415, type);
      assertEquals(response.headers.get("set-cookie"), null);
      await response.body?.cancel();
    }
    const form = await fetch(`${gateway.url}/admin/login`, {
      method: "POST",
      headers: { "content-type": `${FORM}; charset=UTF-8` },
      body: `api_key=${encodeURIComponent(ADMIN_KEY)}`,
      redirect: "manual",
    });
    assertEquals(form.status, 303);
    assert(form.headers.get("set-cookie")?.startsWith("mg_session="));
    await form.body?.cancel();
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("admin API: a JSON body over 1 MiB gets 413 request_too_large, declared or chunked", async () => {
  const gateway = await startTestGateway("");
  try {
    const big = JSON.stringify({ name: "big", metadata: { note: "x".repeat(1024 * 1024) } });
    const declared = await gateway.admin("POST", "/keys", JSON.parse(big));
    assertEquals(declared.status, 413);
    assertEquals((await declared.json()).error.code, "request_too_large");

    const conn = await RawConnection.open(gateway.url);
    try {
      await conn.send(
        `POST /admin/api/keys HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${ADMIN_KEY}\r\n` +
          "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
      );
      const piece = chunk("x".repeat(256 * 1024));
      for (let i = 0; i < 5; i++) await conn.send(piece);
      const response = await conn.response();
      assertEquals(response.status, 413);
      assertEquals(JSON.parse(response.body).error.type, "invalid_request_error");
    } finally {
      conn.close();
    }
    const keys = await (await gateway.admin("GET", "/keys")).json();
    assert(!keys.data.some((k: { name: string }) => k.name === "big"));
  } finally {
    await gateway.shutdown();
  }
});
