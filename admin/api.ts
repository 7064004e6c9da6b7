/** The admin REST API under /admin/api: keys, usage, the request ledger, backends, models, audit. */
import { Hono } from "hono";
import type { Context } from "hono";
import type { KeyDefaults } from "../src/config.ts";
import type { GatewayEnv } from "../src/context.ts";
import { invalidRequest } from "../src/errors.ts";
import { readJsonObject } from "../src/http/body.ts";
import type { KeyDirectory } from "../src/pipeline/key_directory.ts";
import type { Router } from "../src/routing/types.ts";
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
  router: Router;
  defaults: KeyDefaults;
  now: () => number;
}

/** Largest admin API request body: key fields are small, 1 MiB leaves room for metadata. */
export const ADMIN_BODY_BYTES = 1024 * 1024;

function jsonOf(c: Context<GatewayEnv>, whenEmpty?: Record<string, unknown>) {
  return readJsonObject(c.req.raw, { maxBytes: ADMIN_BODY_BYTES, whenEmpty });
}

/** Longest query or path value: KV keys built from one must stay under Deno KV's 2 KiB. */
const MAX_PARAM_CHARS = 500;
/** Dates outside these years cannot be bucketed (or even printed) and are refused. */
const EARLIEST_MS = Date.UTC(1970, 0, 1);
const LATEST_MS = Date.UTC(9999, 11, 31);

function textParam(c: Context<GatewayEnv>, name: string): string | undefined {
  const value = c.req.query(name);
  if (value !== undefined && value.length > MAX_PARAM_CHARS) {
    throw invalidRequest(`Query parameter must be at most ${MAX_PARAM_CHARS} characters`, name);
  }
  return value;
}

function intParam(c: Context<GatewayEnv>, name: string): number | undefined {
  const value = textParam(c, name);
  if (value === undefined || value === "") return undefined;
  if (!/^\d+$/.test(value)) throw invalidRequest("Query parameter must be a whole number", name);
  return Number(value);
}

function timeParam(c: Context<GatewayEnv>, name: string, fallback: number): number {
  const value = textParam(c, name);
  if (!value) return fallback;
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || ms < EARLIEST_MS || ms > LATEST_MS) {
    throw invalidRequest("Query parameter must be an ISO date from 1970 to 9999", name);
  }
  return ms;
}

/** The key id of the path; one longer than any id (KV refuses long keys) is a 400, not a 500. */
function keyId(c: Context<GatewayEnv>): string {
  const id = c.req.param("id") ?? "";
  if (id.length > MAX_PARAM_CHARS) {
    throw invalidRequest(`Path parameter must be at most ${MAX_PARAM_CHARS} characters`, "id");
  }
  return id;
}

/** Runs a listing with the request's `cursor`; a cursor KV does not recognise is a 400. */
async function paged<T>(
  c: Context<GatewayEnv>,
  list: (cursor: string | undefined) => Promise<T>,
): Promise<T> {
  const cursor = textParam(c, "cursor");
  try {
    return await list(cursor);
  } catch (err) {
    if (cursor && err instanceof TypeError && /cursor/i.test(err.message)) {
      throw invalidRequest("Query parameter is not a cursor from a previous page", "cursor");
    }
    throw err;
  }
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
    const page = await paged(
      c,
      (cursor) =>
        deps.keys.list({ cursor, limit: intParam(c, "limit"), search: textParam(c, "search") }),
    );
    const data = await Promise.all(page.data.map((record) => deps.keys.view(record, today())));
    return c.json({ data, next_cursor: page.next_cursor });
  });
  api.get(
    "/keys/:id",
    async (c) => c.json(await deps.keys.view(await deps.keys.require(keyId(c)), today())),
  );
  api.patch("/keys/:id", async (c) => {
    const fields = validateKeyFields(await jsonOf(c), false);
    const record = await deps.keys.update(keyId(c), fields);
    changed(record.id);
    await audit(c, "key.update", record.id, { fields });
    return c.json(await deps.keys.view(record, today()));
  });
  api.delete("/keys/:id", async (c) => {
    const id = keyId(c);
    await deps.keys.delete(id);
    deps.broker.forget(id);
    changed(id);
    await audit(c, "key.delete", id);
    return c.json({ id, deleted: true });
  });
  api.post("/keys/:id/rotate", async (c) => {
    const body = await jsonOf(c, {});
    const grace = body.grace_seconds ?? 0;
    if (typeof grace !== "number" || !Number.isInteger(grace) || grace < 0 || grace > 30 * 86_400) {
      throw invalidRequest(
        "Field must be a whole number of seconds up to 30 days",
        "grace_seconds",
      );
    }
    const issued = await deps.keys.rotate(keyId(c), grace);
    changed(issued.record.id);
    await audit(c, "key.rotate", issued.record.id, { grace_seconds: grace });
    return c.json({ key: issued.key, record: await deps.keys.view(issued.record, today()) });
  });
  api.post("/keys/:id/reset-usage", async (c) => {
    const id = keyId(c);
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
    const key = textParam(c, "key");
    const model = textParam(c, "model");
    const group = textParam(c, "group");
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
      await paged(c, (cursor) =>
        deps.ledger.listRequests({
          cursor,
          limit: intParam(c, "limit"),
          keyId: textParam(c, "key"),
          model: textParam(c, "model"),
        })),
    ));
  api.get("/backends", (c) => c.json({ data: deps.router.snapshot() }));
  api.get("/models", (c) => c.json({ data: deps.router.models() }));
  api.get(
    "/audit",
    async (c) =>
      c.json(
        await paged(
          c,
          (cursor) => listAudit(deps.keys.kv, { cursor, limit: intParam(c, "limit") }),
        ),
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
