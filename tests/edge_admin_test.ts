/** The admin login and sessions under attack: bounded forms, slow-body guesses, logout. */
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
