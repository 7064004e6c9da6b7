/** The admin REST API under /admin/api: keys, usage, the request ledger, backends, models, audit. */
import { Hono } from "hono";
import type { Context } from "hono";
import type { KeyDefaults } from "../src/config.ts";
import type { GatewayEnv } from "../src/context.ts";
import { invalidRequest } from "../src/errors.ts";
import type { KeyDirectory } from "../src/pipeline/key_directory.ts";
import type { BackendStats } from "../src/routing/backend_stats.ts";
import type { ModelRegistry } from "../src/routing/registry.ts";
import { queryUsage } from "../src/store/aggregates.ts";
import { appendAudit, listAudit } from "../src/store/audit.ts";
import type { KeyStore } from "../src/store/key_store.ts";
import type { Ledger } from "../src/store/ledger.ts";
import { type QuotaBroker, utcDay } from "../src/store/quota_broker.ts";
import type { UsageRow } from "../src/store/model.ts";
import { validateKeyFields } from "../src/store/validate_key.ts";

/** What the admin API needs. */
export interface AdminApiDeps {
  keys: KeyStore;
  ledger: Ledger;
  broker: QuotaBroker;
  directory: KeyDirectory;
  registry: ModelRegistry;
  stats: BackendStats;
  defaults: KeyDefaults;
  now: () => number;
}

async function jsonOf(c: Context<GatewayEnv>, text?: string): Promise<unknown> {
  try {
    return text === undefined ? await c.req.json() : JSON.parse(text);
  } catch {
    throw invalidRequest("Request body is not valid JSON");
  }
}

function intParam(c: Context<GatewayEnv>, name: string): number | undefined {
  const value = c.req.query(name);
  if (value === undefined || value === "") return undefined;
  if (!/^\d+$/.test(value)) throw invalidRequest("Query parameter must be a whole number", name);
  return Number(value);
}

function timeParam(c: Context<GatewayEnv>, name: string, fallback: number): number {
  const value = c.req.query(name);
  if (!value) return fallback;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw invalidRequest("Query parameter must be an ISO date", name);
  return ms;
}

/** Builds the admin API sub-app; authentication is added by the caller. */
export function createAdminApi(deps: AdminApiDeps): Hono<GatewayEnv> {
  const api = new Hono<GatewayEnv>();
  const today = () => utcDay(deps.now());
  const audit = (
    c: Context<GatewayEnv>,
    action: string,
    target: string,
    detail: Record<string, unknown> = {},
  ) =>
    appendAudit(deps.keys.kv, {
      time: new Date(deps.now()).toISOString(),
      actor: `admin@${c.get("clientIp") ?? "unknown"}`,
      action,
      target,
      detail,
    });
  const changed = (id: string) => deps.directory.invalidate(id);
  // Reports include what this instance has not written yet (usage is written every 100 ms).
  api.use(async function freshReports(c, next) {
    if (c.req.method === "GET") await Promise.all([deps.ledger.flush(), deps.broker.flush()]);
    await next();
  });

  api.post("/keys", async (c) => {
    const fields = validateKeyFields(await jsonOf(c), true) as
      & ReturnType<typeof validateKeyFields>
      & { name: string };
    const issued = await deps.keys.create(fields, deps.defaults);
    changed(issued.record.id);
    await audit(c, "key.create", issued.record.id, { name: issued.record.name, fields });
    return c.json({ key: issued.key, record: await deps.keys.view(issued.record, today()) }, 201);
  });
  api.get("/keys", async (c) => {
    const page = await deps.keys.list({
      cursor: c.req.query("cursor"),
      limit: intParam(c, "limit"),
      search: c.req.query("search"),
    });
    const data = await Promise.all(page.data.map((record) => deps.keys.view(record, today())));
    return c.json({ data, next_cursor: page.next_cursor });
  });
  api.get(
    "/keys/:id",
    async (c) => c.json(await deps.keys.view(await deps.keys.require(c.req.param("id")), today())),
  );
  api.patch("/keys/:id", async (c) => {
    const fields = validateKeyFields(await jsonOf(c), false);
    const record = await deps.keys.update(c.req.param("id"), fields);
    changed(record.id);
    await audit(c, "key.update", record.id, { fields });
    return c.json(await deps.keys.view(record, today()));
  });
  api.delete("/keys/:id", async (c) => {
    const id = c.req.param("id");
    await deps.keys.delete(id);
    deps.broker.forget(id);
    changed(id);
    await audit(c, "key.delete", id);
    return c.json({ id, deleted: true });
  });
  api.post("/keys/:id/rotate", async (c) => {
    const text = await c.req.text();
    const body = (text.trim() ? await jsonOf(c, text) : {}) as Record<string, unknown> | null;
    const grace = body?.grace_seconds ?? 0;
    if (typeof grace !== "number" || !Number.isInteger(grace) || grace < 0 || grace > 30 * 86_400) {
      throw invalidRequest(
        "Field must be a whole number of seconds up to 30 days",
        "grace_seconds",
      );
    }
    const issued = await deps.keys.rotate(c.req.param("id"), grace);
    changed(issued.record.id);
    await audit(c, "key.rotate", issued.record.id, { grace_seconds: grace });
    return c.json({ key: issued.key, record: await deps.keys.view(issued.record, today()) });
  });
  api.post("/keys/:id/reset-usage", async (c) => {
    const id = c.req.param("id");
    // Usage not yet written by this instance would land after the reset: write it first.
    await deps.broker.flush();
    await deps.keys.resetUsage(id, today());
    deps.broker.forget(id, "reset");
    await audit(c, "key.reset_usage", id);
    return c.json(await deps.keys.view(await deps.keys.require(id), today()));
  });

  api.get("/usage", async (c) => {
    const groupBy = c.req.query("group_by") ?? "day";
    if (groupBy !== "hour" && groupBy !== "day") {
      throw invalidRequest("Expected hour or day", "group_by");
    }
    const by = c.req.query("by") ?? (c.req.query("model") ? "model" : "key");
    if (by !== "key" && by !== "model") throw invalidRequest("Expected key or model", "by");
    const to = timeParam(c, "to", deps.now());
    const from = timeParam(c, "from", to - 7 * 86_400_000);
    let subjects: string[] | undefined;
    const key = c.req.query("key");
    const model = c.req.query("model");
    const group = c.req.query("group");
    if (by === "key" && key) subjects = [key];
    if (by === "model" && model) subjects = [model];
    if (by === "key" && group) {
      const inGroup = await keysInGroup(deps.keys, group);
      subjects = subjects ? subjects.filter((s) => inGroup.has(s)) : [...inGroup];
    }
    const rows = await queryUsage(deps.keys.kv, { from, to, groupBy, by, subjects });
    const named = by === "key" ? await withNames(deps.keys, rows) : rows;
    if (c.req.query("format") === "csv") {
      return c.body(toCsv(named), 200, {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": 'attachment; filename="modelgate-usage.csv"',
      });
    }
    return c.json({ data: named });
  });
  api.get("/requests", async (c) =>
    c.json(
      await deps.ledger.listRequests({
        cursor: c.req.query("cursor"),
        limit: intParam(c, "limit"),
        keyId: c.req.query("key"),
        model: c.req.query("model"),
      }),
    ));
  api.get("/backends", (c) =>
    c.json({
      data: deps.registry.adapters.map((adapter) => ({
        name: adapter.config.name,
        type: adapter.config.type,
        healthy: deps.registry.isHealthy(adapter.config.name),
        ...deps.stats.snapshot(adapter.config.name),
        models: deps.registry.list().filter((m) => m.owned_by === adapter.config.name).map((m) =>
          m.id
        ),
      })),
    }));
  api.get(
    "/models",
    (c) =>
      c.json({
        data: deps.registry.list().map((m) => ({
          id: m.id,
          backends: [m.owned_by],
          created: m.created,
        })),
      }),
  );
  api.get(
    "/audit",
    async (c) =>
      c.json(
        await listAudit(deps.keys.kv, {
          cursor: c.req.query("cursor"),
          limit: intParam(c, "limit"),
        }),
      ),
  );
  return api;
}

async function keysInGroup(keys: KeyStore, group: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await keys.list({ cursor, limit: 500 });
    for (const record of page.data) if (record.group === group) ids.add(record.id);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return ids;
}

async function withNames(
  keys: KeyStore,
  rows: UsageRow[],
): Promise<(UsageRow & { name: string | null })[]> {
  const names = new Map<string, string | null>();
  for (const row of rows) {
    if (!names.has(row.subject)) {
      names.set(row.subject, (await keys.get(row.subject))?.name ?? null);
    }
  }
  return rows.map((row) => ({ ...row, name: names.get(row.subject) ?? null }));
}

const CSV_COLUMNS = [
  "bucket",
  "subject",
  "name",
  "requests",
  "prompt_tokens",
  "completion_tokens",
  "total_tokens",
  "errors",
  "cost",
] as const;

function toCsv(rows: object[]): string {
  const cell = (value: unknown) => {
    const text = value === null || value === undefined ? "" : String(value);
    // Quote, and defuse spreadsheet formulas in names an operator did not write.
    const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [
    CSV_COLUMNS.join(","),
    ...rows.map((row) =>
      CSV_COLUMNS.map((col) => cell((row as Record<string, unknown>)[col])).join(",")
    ),
  ].join(
    "\n",
  ) + "\n";
}
