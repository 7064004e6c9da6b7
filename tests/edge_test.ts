/** The HTTP edge: bounded bodies, the admin login under attack, sessions, paths, hostile input. */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { ADMIN_KEY, startTestGateway } from "./helpers.ts";
import { chunk, RawConnection } from "./raw_http.ts";

const FORM = "application/x-www-form-urlencoded";

/** Posts the login form (any body and type); the response is not followed. */
function postLogin(url: string, body: string, type = FORM): Promise<Response> {
  return fetch(`${url}/admin/login`, {
    method: "POST",
    headers: { "content-type": type },
    body,
    redirect: "manual",
  });
}

Deno.test("admin login: a form over 8 KiB gets 413, by Content-Length or as it streams", async () => {
  const gateway = await startTestGateway("");
  try {
    const big = `api_key=${"k".repeat(9000)}`;
    const declared = await postLogin(gateway.url, big);
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
      const response = await postLogin(gateway.url, `api_key=${ADMIN_KEY}`, type);
      assertEquals(response.status, 415, type);
      assertEquals(response.headers.get("set-cookie"), null);
      await response.body?.cancel();
    }
    const form = await postLogin(
      gateway.url,
      `api_key=${encodeURIComponent(ADMIN_KEY)}`,
      `${FORM}; charset=UTF-8`,
    );
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

/** Sends `n` requests' headers at once, then their bodies; returns the statuses. */
async function slowBodies(url: string, n: number, head: string, body: string): Promise<number[]> {
  const conns = await Promise.all([...Array(n)].map(() => RawConnection.open(url)));
  try {
    const responses = conns.map((conn) => conn.response());
    await Promise.all(conns.map((conn) => conn.send(head)));
    // Every request now waits for its body, as a guesser keeping the gate open would.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await Promise.all(conns.map((conn) => conn.send(body)));
    return (await Promise.all(responses)).map((r) => r.status);
  } finally {
    for (const conn of conns) conn.close();
  }
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

Deno.test("admin login: 20 concurrent guesses with slow bodies get at most 5 evaluations", async () => {
  const gateway = await startTestGateway("");
  try {
    const body = "api_key=wrong-guess";
    const statuses = await slowBodies(
      gateway.url,
      20,
      `POST /admin/login HTTP/1.1\r\nhost: gateway\r\ncontent-type: ${FORM}\r\n` +
        `content-length: ${body.length}\r\n\r\n`,
      body,
    );
    assert(count(statuses, 401) <= 5, `evaluated: ${statuses}`);
    assertEquals(count(statuses, 401) + count(statuses, 429), 20);
    const failures = gateway.logs.filter((line) => line.includes("admin UI login failed"));
    assert(failures.length <= 5, `${failures.length} guesses were checked`);
    const right = await postLogin(gateway.url, `api_key=${ADMIN_KEY}`);
    assertEquals(right.status, 429, "the address waits out its window, even with the right key");
    assert(Number(right.headers.get("retry-after")) > 0);
    await right.body?.cancel();
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("admin API: concurrent bearer guesses with slow bodies share the login's 5 evaluations", async () => {
  const gateway = await startTestGateway("");
  try {
    const login = (key: string) =>
      postLogin(gateway.url, `api_key=${key}`).then(async (
        r,
      ) => (await r.body?.cancel(), r.status));
    // A success gives its slot back: 4 failures and a success leave one guess.
    for (let i = 0; i < 4; i++) assertEquals(await login("wrong"), 401);
    assertEquals(await login(ADMIN_KEY), 303);
    const body = JSON.stringify({ name: "guess" });
    const statuses = await slowBodies(
      gateway.url,
      10,
      "POST /admin/api/keys HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer wrong\r\n" +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
      body,
    );
    assertEquals(count(statuses, 401), 1, `${statuses}`);
    assertEquals(count(statuses, 429), 9);
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("admin sessions: logout revokes the cookie on this and every instance sharing the KV", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = Date.now();
  const clock = () => now;
  const first = await startTestGateway("", { kv, now: clock });
  const second = await startTestGateway("", { kv, now: clock });
  try {
    const login = await postLogin(first.url, `api_key=${ADMIN_KEY}`);
    await login.body?.cancel();
    const cookie = login.headers.get("set-cookie")!.split(";")[0];
    const page = (url: string) =>
      fetch(`${url}/admin/keys`, { headers: { cookie }, redirect: "manual" });
    const api = (url: string) => fetch(`${url}/admin/api/keys`, { headers: { cookie } });
    const expect = async (url: string, pageStatus: number, apiStatus: number) => {
      const shown = await page(url);
      await shown.body?.cancel();
      assertEquals(shown.status, pageStatus, `${url} page`);
      if (pageStatus === 303) assertEquals(shown.headers.get("location"), "/admin/login");
      const listed = await api(url);
      await listed.body?.cancel();
      assertEquals(listed.status, apiStatus, `${url} API`);
    };
    await expect(first.url, 200, 200);
    await expect(second.url, 200, 200);

    const out = await fetch(`${first.url}/admin/logout`, {
      method: "POST",
      headers: { cookie },
      redirect: "manual",
    });
    await out.body?.cancel();
    assertEquals(out.status, 303);
    assertStringIncludes(out.headers.get("set-cookie") ?? "", "Max-Age=0");
    await expect(first.url, 303, 401);
    // The other instance may trust its answer of the last second; not longer.
    now += 1001;
    await expect(second.url, 303, 401);

    const again = await postLogin(second.url, `api_key=${ADMIN_KEY}`);
    await again.body?.cancel();
    assertEquals(again.status, 303, "a new login still works");
  } finally {
    await first.shutdown();
    await second.shutdown();
    kv.close();
  }
});

Deno.test("paths: a model name is decoded exactly once; malformed escapes are 400, never 500", async () => {
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "http://127.0.0.1:9", models: [gpt-test, "org/model%41"] }
`);
  try {
    const cases: [string, number, string][] = [
      ["/v1/models/%E0%A4%A", 400, "invalid_request_error"],
      ["/v1/models/%FF", 400, "invalid_request_error"],
      ["/v1/models/%", 400, "invalid_request_error"],
      ["/v1/models/gpt%ZZ", 400, "invalid_request_error"],
      ["/v1/models/%25E0", 404, "model_not_found"],
      ["/v1/models/gpt%2Dtest", 200, "gpt-test"],
      ["/v1/models/org%2Fmodel%2541", 200, "org/model%41"],
      ["/v1/models/org/model%2541", 200, "org/model%41"],
      ["/v1/models/org%2Fmodel%41", 404, "model_not_found"],
    ];
    for (const [path, status, expected] of cases) {
      const response = await fetch(`${gateway.url}${path}`, { headers: gateway.auth });
      const body = await response.json();
      assertEquals(response.status, status, path);
      if (status === 200) assertEquals(body.id, expected, path);
      else assertEquals(status === 400 ? body.error.type : body.error.code, expected, path);
    }
    // The SDK escapes the name itself; it comes back as it was sent.
    const model = await gateway.client().models.retrieve("org/model%41");
    assertEquals(model.id, "org/model%41");
    for (const path of ["/admin/api/keys/%E0%A4%A", "/admin/%E0", "/%E0", "/v1/%C3%28"]) {
      const response = await fetch(`${gateway.url}${path}`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      assertEquals(response.status, 400, path);
      assertEquals((await response.json()).error.type, "invalid_request_error");
    }
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("admin API: hostile query and path values get 400 naming the parameter, never 500", async () => {
  const gateway = await startTestGateway("");
  try {
    const long = "k".repeat(5000);
    const cases: [string, string][] = [
      ["/keys?cursor=garbage", "cursor"],
      ["/requests?cursor=%E0", "cursor"],
      ["/audit?cursor=AgA", "cursor"],
      ["/keys?limit=1e999", "limit"],
      [`/requests?key=${long}`, "key"],
      [`/usage?model=${long}&by=model`, "model"],
      [`/keys?search=${long}`, "search"],
      ["/usage?to=-271821-04-20T00:00:00Z", "to"],
      ["/usage?from=275760-09-13T00:00:00Z", "from"],
      [`/keys/${long}`, "id"],
    ];
    for (const [path, param] of cases) {
      const response = await gateway.admin("GET", path);
      const body = await response.json();
      assertEquals(response.status, 400, `${path.slice(0, 40)}: ${JSON.stringify(body)}`);
      assertEquals(body.error.param, param, path.slice(0, 40));
    }
    // A cursor handed out by a listing still pages.
    for (let i = 0; i < 3; i++) await gateway.createKey({ name: `page-${i}` });
    const first = await (await gateway.admin("GET", "/keys?limit=2")).json();
    const next = await gateway.admin("GET", `/keys?limit=2&cursor=${first.next_cursor}`);
    assertEquals(next.status, 200);
    assertEquals((await next.json()).data.length, 2);
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("hostile requests: huge or many headers, bad cookies and stray bytes get 4xx, never 500", async () => {
  const gateway = await startTestGateway("");
  try {
    const raw = async (head: string) => {
      const conn = await RawConnection.open(gateway.url);
      try {
        // Bytes as written (latin1), so \xff reaches the server as one byte 0xff.
        await conn.send(Uint8Array.from(head, (ch) => ch.charCodeAt(0)));
        return (await conn.response()).status;
      } finally {
        conn.close();
      }
    };
    const many = [...Array(200).keys()].map((i) => `x-h${i}: v\r\n`).join("");
    const heads = [
      `GET /v1/models HTTP/1.1\r\nhost: g\r\nx-big: ${"a".repeat(100_000)}\r\n\r\n`,
      `GET /v1/models HTTP/1.1\r\nhost: g\r\n${many}\r\n`,
      `GET /${"a".repeat(100_000)} HTTP/1.1\r\nhost: g\r\n\r\n`,
      "POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: many\r\n\r\n",
      "GET /admin HTTP/1.1\r\nhost: g\r\ncookie: mg_session=\xff\xfe.\xc3\x28.\x00\r\n\r\n",
      "GET /admin/api/keys HTTP/1.1\r\nhost: g\r\nauthorization: Bearer \xff\xfe\r\n\r\n",
      "GET /v1/models HTTP/1.1\r\nhost: g\r\nauthorization: Bearer \xc3\x28\r\n\r\n",
    ];
    for (const head of heads) {
      const status = await raw(head);
      assert(status >= 300 && status < 500, `${head.slice(0, 60)} -> ${status}`);
    }
    // Under the header limits README states (64 KiB, 128 lines) a request is served.
    const fewer = [...Array(120).keys()].map((i) => `x-h${i}: v\r\n`).join("");
    assertEquals(await raw(`GET /healthz HTTP/1.1\r\nhost: g\r\n${fewer}\r\n`), 200);
    const big = `x-big: ${"a".repeat(60_000)}\r\n`;
    assertEquals(await raw(`GET /healthz HTTP/1.1\r\nhost: g\r\n${big}\r\n`), 200);
    const cookies = [
      "mg_session=%%%",
      "mg_session",
      ";;;===;mg_session==;",
      `mg_session=${"1".repeat(400)}.a.b`,
      `mg_session=${"a.".repeat(3000)}`,
      [...Array(300).keys()].map((i) => `c${i}=v`).join("; "),
    ];
    for (const cookie of cookies) {
      const page = await fetch(`${gateway.url}/admin/keys`, {
        headers: { cookie },
        redirect: "manual",
      });
      await page.body?.cancel();
      assertEquals(page.status, 303, cookie.slice(0, 40));
      const api = await fetch(`${gateway.url}/admin/api/keys`, { headers: { cookie } });
      // 429 once this address has failed 5 times.
      assert(api.status === 401 || api.status === 429, `${cookie.slice(0, 40)} -> ${api.status}`);
      await api.body?.cancel();
    }
    const health = await fetch(`${gateway.url}/healthz`);
    assertEquals(health.status, 200);
    await health.body?.cancel();
  } finally {
    await gateway.shutdown();
  }
});

Deno.test("admin sessions: when KV cannot answer, a cookie gets 503, not a pass and not a 500", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = Date.now();
  const gateway = await startTestGateway("", { kv, now: () => now });
  try {
    const login = await postLogin(gateway.url, `api_key=${ADMIN_KEY}`);
    await login.body?.cancel();
    const cookie = login.headers.get("set-cookie")!.split(";")[0];
    kv.close();
    now += 1001;
    const page = await fetch(`${gateway.url}/admin/keys`, { headers: { cookie } });
    assertEquals(page.status, 503);
    assertEquals((await page.json()).error.code, "session_store_unavailable");
    const out = await fetch(`${gateway.url}/admin/logout`, { method: "POST", headers: { cookie } });
    assertEquals(out.status, 503);
    await out.body?.cancel();
  } finally {
    await gateway.shutdown();
  }
});
