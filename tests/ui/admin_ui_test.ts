import { assert, assertEquals } from "../assert.ts";
import OpenAI from "openai";
import { startFakeOpenAi } from "../fakes/openai_backend.ts";
import { ADMIN_KEY, startTestGateway, waitFor } from "../helpers.ts";
import { ARTIFACTS, launchBrowser } from "./browser.ts";

Deno.test({
  name: "admin UI in Chromium: log in, create a key, use it, watch it, edit, disable, log out",
  // Playwright keeps a pipe to the browser open until its process is reaped.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fake = await startFakeOpenAi();
    const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
    const { browser, close } = await launchBrowser();
    const shot = (page: import("playwright-core").Page, name: string) =>
      page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
      const problems: string[] = [];
      // The refused login (401) and the forged write (403) are expected; anything else is a problem.
      const expected = /status of 40[13]/;
      page.on(
        "console",
        (m) => m.type() === "error" && !expected.test(m.text()) && problems.push(m.text()),
      );
      page.on("pageerror", (e) => problems.push(e.message));

      await page.goto(`${gateway.url}/admin`);
      assert(page.url().endsWith("/admin/login"), page.url());
      await page.fill("#api_key", "wrong-key");
      await page.click("button[type=submit]");
      assert((await page.textContent("[role=alert]"))?.includes("not valid"));
      await shot(page, "login-refused");

      await page.fill("#api_key", ADMIN_KEY);
      await page.click("button[type=submit]");
      await page.waitForURL(`${gateway.url}/admin`);
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === "mg_session")!;
      assert(session.httpOnly && session.sameSite === "Strict");
      assert(!session.value.includes(ADMIN_KEY));
      const stored = await page.evaluate(() =>
        JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })
      );
      assert(!stored.includes(ADMIN_KEY), "the admin key is never stored in the browser");

      await page.goto(`${gateway.url}/admin/keys`);
      await page.click("summary");
      await page.fill("input[name=name]", "<script>alert(1)</script>");
      await page.click("form.grid button[type=submit]");
      const plaintext = (await page.textContent("#new-key"))!.trim();
      assert(/^mg-[A-Za-z0-9_-]{43}$/.test(plaintext), plaintext);
      await shot(page, "keys-created");
      const cell = page.locator("td", { hasText: "<script>alert(1)</script>" });
      assertEquals(await cell.count(), 1, "a hostile name renders as text");

      const client = new OpenAI({ apiKey: plaintext, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
      await client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "hi" }],
      });

      await page.goto(`${gateway.url}/admin/requests`);
      await page.locator("td", { hasText: "gpt-test" }).first().waitFor();
      await shot(page, "requests");
      await page.goto(`${gateway.url}/admin`);
      await page.locator(".stat-value").first().waitFor();
      await waitFor(
        async () => (await page.locator(".stat-value").first().textContent()) === "1",
        5000,
      );
      await shot(page, "overview");

      await page.goto(`${gateway.url}/admin/keys`);
      const row = page.locator("tr", { hasText: "<script>alert(1)</script>" });
      await row.getByRole("button", { name: "Edit" }).click();
      await page.fill("form[aria-label^=Edit] input[name=rpm]", "42");
      await page.click("form[aria-label^=Edit] button[type=submit]");
      await page.locator("td", { hasText: "42" }).first().waitFor();
      const keys = await (await gateway.admin("GET", "/keys?search=script")).json();
      assertEquals(keys.data[0].rpm, 42);

      await row.getByRole("button", { name: "Disable" }).click();
      await row.locator("td", { hasText: "disabled" }).waitFor();
      const refused = await client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "hi" }],
      })
        .catch((e) => e);
      assertEquals(refused.status, 401);

      for (const name of ["usage", "backends", "audit"]) {
        await page.goto(`${gateway.url}/admin/${name}`);
        await page.locator("table, .muted").first().waitFor();
        await shot(page, name);
      }
      // The Backends page shows each backend's state, slots in use of the maximum, and queue.
      await page.goto(`${gateway.url}/admin/backends`);
      const upRow = page.locator("tr", { hasText: "healthy" }).first();
      await upRow.waitFor();
      assert((await upRow.textContent())?.includes("0 / ∞"), await upRow.textContent() ?? "");
      assert((await page.textContent("thead"))?.includes("Queued"));
      await page.setViewportSize({ width: 390, height: 800 });
      await page.goto(`${gateway.url}/admin/keys`);
      await page.locator("table").waitFor();
      await shot(page, "keys-phone");

      // A write with the session but without the CSRF token is refused.
      const forged = await page.evaluate(async () =>
        (await fetch("/admin/api/keys", { method: "POST", body: "{}" })).status
      );
      assertEquals(forged, 403);

      await page.click("text=Log out");
      await page.waitForURL(`${gateway.url}/admin/login`);
      await page.goto(`${gateway.url}/admin/keys`);
      assert(page.url().endsWith("/admin/login"));
      assertEquals(problems, [], problems.join("\n"));
    } finally {
      await close();
      await gateway.shutdown();
      await fake.close();
    }
  },
});

Deno.test("admin UI pages send a strict CSP and never inline scripts", async () => {
  const gateway = await startTestGateway("");
  try {
    const response = await fetch(`${gateway.url}/admin/login`);
    const csp = response.headers.get("content-security-policy") ?? "";
    assert(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), csp);
    const html = await response.text();
    assert(!/<script(?![^>]*src=)/.test(html), "no inline script");
    const asset = await fetch(`${gateway.url}/admin/assets/app.js`);
    assertEquals(asset.status, 200);
    await asset.body?.cancel();
    const traversal = await fetch(`${gateway.url}/admin/assets/..%2F..%2Fdeno.json`);
    assertEquals(traversal.status, 404);
    await traversal.body?.cancel();
  } finally {
    await gateway.shutdown();
  }
});
