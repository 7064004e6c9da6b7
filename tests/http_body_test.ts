/** src/http/body.ts against real requests on loopback. */
import { assertEquals } from "./assert.ts";
import { type BodyLimits, readBody } from "../src/http/body.ts";
import { toGatewayError } from "../src/errors.ts";
import { chunk, RawConnection } from "./raw_http.ts";

/** A loopback server that reads each body with `limits` and answers with its size or error. */
async function withReader(limits: BodyLimits, fn: (url: string) => Promise<void>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    try {
      const bytes = await readBody(request, limits);
      return Response.json({ size: bytes.byteLength, text: new TextDecoder().decode(bytes) });
    } catch (err) {
      const error = toGatewayError(err);
      return Response.json(error.toJSON(), { status: error.status });
    }
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

async function postChunked(url: string, parts: string[], pauseMs = 0) {
  const conn = await RawConnection.open(url);
  try {
    await conn.send("POST / HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n");
    for (const part of parts) {
      await conn.send(chunk(part));
      if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    await conn.send("0\r\n\r\n");
    return await conn.response();
  } finally {
    conn.close();
  }
}

Deno.test("readBody() returns a chunked body whole, and one of exactly the limit", async () => {
  await withReader({ maxBytes: 10 }, async (url) => {
    const response = await postChunked(url, ["héll", "o", " wo", "r"]);
    assertEquals(response.status, 200);
    assertEquals(JSON.parse(response.body), { size: 10, text: "héllo wor" });
  });
});

Deno.test("readBody() refuses one byte past the limit with 413, declared or counted", async () => {
  await withReader({ maxBytes: 10 }, async (url) => {
    const declared = await fetch(url, { method: "POST", body: "x".repeat(11) });
    assertEquals(declared.status, 413);
    assertEquals((await declared.json()).error.code, "request_too_large");
    const counted = await postChunked(url, ["xxxxx", "xxxxx", "x"]);
    assertEquals(counted.status, 413);
  });
});

Deno.test("readBody() refuses a body that stalls longer than idleMs with 408", async () => {
  await withReader({ maxBytes: 1000, idleMs: 100 }, async (url) => {
    const conn = await RawConnection.open(url);
    try {
      await conn.send("POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\n\r\nabc");
      const response = await conn.response();
      assertEquals(response.status, 408);
      assertEquals(JSON.parse(response.body).error.code, "request_timeout");
    } finally {
      conn.close();
    }
  });
});

Deno.test("readBody() keeps reading a slow body whose pauses stay under idleMs", async () => {
  await withReader({ maxBytes: 1000, idleMs: 2000 }, async (url) => {
    const response = await postChunked(url, ["a", "b", "c", "d", "e"], 50);
    assertEquals(response.status, 200);
    assertEquals(JSON.parse(response.body).text, "abcde");
  });
});

Deno.test("readBody() wants a small body of declared length whole within idleMs, however it trickles", async () => {
  await withReader({ maxBytes: 1000, idleMs: 150 }, async (url) => {
    const conn = await RawConnection.open(url);
    try {
      await conn.send("POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 4\r\n\r\na");
      for (const part of ["b", "c"]) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        await conn.send(part);
      }
      const response = await conn.response();
      assertEquals(response.status, 408, "each pause was under idleMs, the whole body was not");
    } finally {
      conn.close();
    }
  });
});
