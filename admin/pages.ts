/**
 * The admin UI at /admin: server-rendered pages that load one small Preact bundle, which renders
 * the page's island from the admin REST API. Login trades the admin key for a session cookie.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { GatewayEnv } from "../src/context.ts";
import { GatewayError } from "../src/errors.ts";
import { readForm } from "../src/http/body.ts";
import type { Logger } from "../src/log.ts";
import { adminKeyMatches, type FailureGate } from "./auth.ts";
import { readAsset } from "./assets.ts";
import { type Sessions, sessionToken } from "./session.ts";

/** Largest login form accepted: it holds one admin key. */
export const LOGIN_BODY_BYTES = 8 * 1024;

/** Pages of the admin UI, in navigation order. */
export const PAGES = [
  ["overview", "Overview"],
  ["keys", "Keys"],
  ["usage", "Usage"],
  ["requests", "Requests"],
  ["backends", "Backends"],
  ["audit", "Audit"],
] as const;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** What the pages need. */
export interface AdminPagesDeps {
  sessions: Sessions;
  adminKeyHash: string;
  gate: FailureGate;
  log: Logger;
}

/** Escapes text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function html(c: Context<GatewayEnv>, body: string, status = 200) {
  c.header("content-security-policy", CSP);
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "no-referrer");
  c.header("cache-control", "no-store");
  return c.html(body, status as 200);
}

function layout(title: string, main: string, nav = ""): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · ModelGate</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/assets/app.css">
</head><body>${nav}<main>${main}</main></body></html>`;
}

function loginPage(message: string | null): string {
  return layout(
    "Log in",
    `<form class="login" method="post" action="/admin/login">
<h1>ModelGate</h1>
<label for="api_key">Admin key</label>
<input id="api_key" name="api_key" type="password" autocomplete="current-password" required autofocus>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ""}
<button type="submit">Log in</button>
</form>`,
  );
}

/** Builds the /admin sub-app (pages, login, logout, assets). */
export function createAdminPages(deps: AdminPagesDeps): Hono<GatewayEnv> {
  const pages = new Hono<GatewayEnv>();

  pages.get("/assets/:file", async (c) => {
    const asset = await readAsset(c.req.param("file"));
    if (!asset) return c.notFound();
    c.header("cache-control", "no-cache");
    c.header("x-content-type-options", "nosniff");
    return c.body(asset.body, 200, { "content-type": asset.type });
  });
  pages.get("/login", (c) => html(c, loginPage(null)));
  pages.post("/login", async (c) => {
    const ip = c.get("clientIp") ?? "unknown";
    // The attempt counts as failed until the key is checked, however long its body takes.
    const wait = deps.gate.reserve(ip);
    if (wait > 0) {
      c.header("retry-after", String(wait));
      return html(c, loginPage(`Too many failed attempts: try again in ${wait} s`), 429);
    }
    let key: string;
    try {
      key = (await readForm(c.req.raw, { maxBytes: LOGIN_BODY_BYTES })).get("api_key") ?? "";
    } catch (err) {
      // Too large, too slow or not a form: said on the page, as the form's other errors are.
      if (!(err instanceof GatewayError) || err.status >= 500) throw err;
      return html(c, loginPage(err.message), err.status);
    }
    if (!key || !adminKeyMatches(key, deps.adminKeyHash)) {
      deps.log.warn("admin UI login failed", { client_ip: ip });
      return html(c, loginPage("That admin key is not valid"), 401);
    }
    deps.gate.refund(ip);
    c.header(
      "set-cookie",
      deps.sessions.cookie(c, deps.sessions.issue(), deps.sessions.maxAgeSeconds),
    );
    return c.redirect("/admin", 303);
  });
  pages.post("/logout", async (c) => {
    await deps.sessions.revoke(sessionToken(c));
    c.header("set-cookie", deps.sessions.cookie(c, "", 0));
    return c.redirect("/admin/login", 303);
  });

  const page = (name: string) => async (c: Context<GatewayEnv>) => {
    const token = sessionToken(c);
    if (!token || !(await deps.sessions.valid(token))) return c.redirect("/admin/login", 303);
    const nav = `<header><nav aria-label="Main">
<strong>ModelGate</strong>
${
      PAGES.map(([id, label]) =>
        `<a href="/admin${id === "overview" ? "" : `/${id}`}"${
          id === name ? ' aria-current="page"' : ""
        }>${label}</a>`
      ).join("")
    }
<form method="post" action="/admin/logout"><button type="submit" class="link">Log out</button></form>
</nav></header>`;
    const title = PAGES.find(([id]) => id === name)?.[1] ?? "Admin";
    const main = `<h1>${title}</h1>
<div id="app" data-page="${name}" data-csrf="${
      escapeHtml(deps.sessions.csrf(token))
    }"><p>Loading…</p></div>
<script type="module" src="/admin/assets/app.js"></script>`;
    return html(c, layout(title, main, nav));
  };
  pages.get("/", page("overview"));
  for (const [id] of PAGES) if (id !== "overview") pages.get(`/${id}`, page(id));
  return pages;
}
