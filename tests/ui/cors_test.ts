import { assert, assertEquals } from "../assert.ts";
import { startFakeOpenAi } from "../fakes/openai_backend.ts";
import { startTestGateway } from "../helpers.ts";
import { launchBrowser } from "./browser.ts";

/** A web app's origin: a page server on its own loopback port. */
function startPage() {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("<!doctype html><title>app</title>", {
        headers: { "content-type": "text/html" },
      }),
  );
  return { origin: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`, server };
}

Deno.test({
  name:
    "CORS in Chromium: an allowed origin calls /v1 and reads answers and errors; others are blocked",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fake = await startFakeOpenAi();
    const allowedPage = startPage();
    const otherPage = startPage();
    const gateway = await startTestGateway(`
server:
  cors:
    allowed_origins: ["${allowedPage.origin}"]
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
    const { key } = await gateway.createKey({ rpm: 100 });
    const { browser, close } = await launchBrowser();
    try {
      const call = (pageUrl: string, apiKey: string) =>
        browser.newPage().then(async (page) => {
          await page.goto(pageUrl);
          const result = await page.evaluate(async ({ url, apiKey }) => {
            try {
              const response = await fetch(`${url}/v1/chat/completions`, {
                method: "POST",
                headers: {
                  authorization: `Bearer ${apiKey}`,
                  "content-type": "application/json",
                  "x-stainless-lang": "js",
                },
                body: JSON.stringify({
                  model: "gpt-test",
                  messages: [{ role: "user", content: "hi" }],
                }),
              });
              return {
                status: response.status,
                body: await response.json(),
                limit: response.headers.get("x-ratelimit-limit-requests"),
                requestId: response.headers.get("x-request-id"),
              };
            } catch (err) {
              return { error: String(err) };
            }
          }, { url: gateway.url, apiKey });
          await page.close();
          return result as Record<string, unknown>;
        });

      const ok = await call(allowedPage.origin, key);
      assertEquals(ok.status, 200, JSON.stringify(ok));
      const body = ok.body as { choices: { message: { content: string } }[] };
      assert(body.choices[0].message.content.length > 0);
      assertEquals(ok.limit, "100", "rate-limit headers are exposed to scripts");
      assert(ok.requestId, "x-request-id is exposed");

      const refused = await call(allowedPage.origin, "mg-wrong");
      assertEquals(refused.status, 401, "an error answer is readable too");
      assertEquals((refused.body as { error: { code: string } }).error.code, "invalid_api_key");

      const blocked = await call(otherPage.origin, key);
      assert(typeof blocked.error === "string", JSON.stringify(blocked));
      const posts = fake.requests.filter((r) => r.method === "POST").length;
      assertEquals(posts, 1, "only the allowed origin's call reached the backend");

      // The preflight names back only the listed origin, never a wildcard, never credentials.
      const preflight = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: {
          origin: allowedPage.origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type, x-evil",
        },
      });
      await preflight.body?.cancel();
      assertEquals(preflight.status, 204);
      assertEquals(preflight.headers.get("access-control-allow-origin"), allowedPage.origin);
      assertEquals(
        preflight.headers.get("access-control-allow-headers"),
        "authorization, content-type",
      );
      assertEquals(preflight.headers.get("access-control-allow-credentials"), null);
      const foreign = await fetch(`${gateway.url}/v1/models`, {
        method: "OPTIONS",
        headers: { origin: otherPage.origin, "access-control-request-method": "GET" },
      });
      await foreign.body?.cancel();
      assertEquals(foreign.status, 403);
      assertEquals(foreign.headers.get("access-control-allow-origin"), null);
      const admin = await fetch(`${gateway.url}/admin/api/keys`, {
        headers: { origin: allowedPage.origin },
      });
      await admin.body?.cancel();
      assertEquals(
        admin.headers.get("access-control-allow-origin"),
        null,
        "/admin never gets CORS",
      );
    } finally {
      await close();
      await gateway.shutdown();
      await allowedPage.server.shutdown();
      await otherPage.server.shutdown();
      await fake.close();
    }
  },
});
