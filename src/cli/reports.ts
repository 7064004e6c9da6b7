/** `modelgate usage`, `modelgate models` and `modelgate backends`. */
import { parseDuration, parseFlags } from "./args.ts";
import { adminRequest, type AdminTarget, CliError } from "./client.ts";
import { table } from "./format.ts";

/** Runs `usage` and returns what to print. */
export async function usageCommand(
  target: AdminTarget,
  args: string[],
  now = Date.now(),
): Promise<string> {
  const { values } = parseFlags(args, {
    key: { type: "string" },
    model: { type: "string" },
    group: { type: "string" },
    since: { type: "string" },
    by: { type: "string" },
    per: { type: "string" },
    csv: { type: "boolean" },
    json: { type: "boolean" },
  });
  const by = values.by ?? "day";
  if (by !== "day" && by !== "hour") {
    throw new CliError(`Invalid --by "${by}": expected day or hour`, 2);
  }
  const per = values.per ?? (values.model ? "model" : "key");
  if (per !== "key" && per !== "model") {
    throw new CliError(`Invalid --per "${per}": expected key or model`, 2);
  }
  const since = parseDuration(values.since ?? "7d", "--since");
  const query = new URLSearchParams({
    from: new Date(now - since * 1000).toISOString(),
    to: new Date(now).toISOString(),
    group_by: by,
    by: per,
  });
  if (values.key) query.set("key", values.key);
  if (values.model) query.set("model", values.model);
  if (values.group) query.set("group", values.group);
  if (values.csv) {
    query.set("format", "csv");
    return String(await adminRequest(target, "GET", `/usage?${query}`)).trimEnd();
  }
  const result = await adminRequest(target, "GET", `/usage?${query}`) as {
    data: Record<string, unknown>[];
  };
  if (values.json) return JSON.stringify(result, null, 2);
  if (result.data.length === 0) return "No usage in this period";
  return table(
    ["BUCKET", per.toUpperCase(), "REQUESTS", "PROMPT", "COMPLETION", "TOTAL", "ERRORS", "COST"],
    result.data.map((row) => [
      row.bucket as string,
      (row.name ?? row.subject) as string,
      row.requests as number,
      row.prompt_tokens as number,
      row.completion_tokens as number,
      row.total_tokens as number,
      row.errors as number,
      typeof row.cost === "number" ? row.cost.toFixed(4) : null,
    ]),
  );
}

/** Runs `models` and returns what to print. */
export async function modelsCommand(target: AdminTarget, args: string[]): Promise<string> {
  const { values } = parseFlags(args, { json: { type: "boolean" } });
  const result = await adminRequest(target, "GET", "/models") as {
    data: Record<string, unknown>[];
  };
  if (values.json) return JSON.stringify(result, null, 2);
  const list = (value: unknown) => (value as string[] | undefined)?.join(", ") || null;
  return table(
    ["MODEL", "BACKENDS", "QUEUED", "ALIASES", "FALLBACKS"],
    result.data.map((m) => [
      m.id as string,
      list(m.backends),
      m.queued as number,
      list(m.aliases),
      list(m.fallbacks),
    ]),
  );
}

/** Runs `backends` and returns what to print: state, slots in use of the maximum, queue. */
export async function backendsCommand(target: AdminTarget, args: string[]): Promise<string> {
  const { values } = parseFlags(args, { json: { type: "boolean" } });
  const result = await adminRequest(target, "GET", "/backends") as {
    data: Record<string, unknown>[];
  };
  if (values.json) return JSON.stringify(result, null, 2);
  return table(
    ["NAME", "TYPE", "STATE", "IN-FLIGHT", "QUEUED", "FAILURES", "EJECTED-UNTIL", "MODELS"],
    result.data.map((b) => [
      b.name as string,
      b.type as string,
      b.state as string,
      `${b.in_flight}/${b.max_concurrency ?? "∞"}`,
      b.queued as number,
      b.consecutive_failures as number,
      b.ejected_until as string | null,
      (b.models as string[] | undefined)?.length ?? 0,
    ]),
  );
}
