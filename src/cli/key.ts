/** `modelgate key ...`: create, list, show, update, disable, enable, delete, rotate, reset-usage. */
import { parseCount, parseDuration, parseExpiry, parseFlags, parseList } from "./args.ts";
import { adminRequest, type AdminTarget, CliError } from "./client.ts";
import { details, limit, table } from "./format.ts";

const LIMIT_FLAGS = {
  name: { type: "string", short: "n" },
  group: { type: "string", short: "g" },
  quota: { type: "string", short: "q" },
  rpm: { type: "string", short: "r" },
  burst: { type: "string" },
  tpm: { type: "string" },
  "daily-tokens": { type: "string" },
  "daily-requests": { type: "string" },
  "max-concurrency": { type: "string" },
  ips: { type: "string" },
  models: { type: "string" },
  "default-model": { type: "string" },
  expires: { type: "string" },
  metadata: { type: "string", multiple: true },
  json: { type: "boolean" },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

/** Turns limit flags into the JSON fields of the admin API (only the flags given). */
function fieldsFrom(values: Values): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const text = (key: string) => values[key] as string | undefined;
  if (text("name") !== undefined) fields.name = text("name");
  if (text("group") !== undefined) fields.group = text("group");
  const counts: [string, string][] = [
    ["quota", "quota_tokens"],
    ["rpm", "rpm"],
    ["burst", "burst"],
    ["tpm", "tpm"],
    ["daily-tokens", "daily_tokens"],
    ["daily-requests", "daily_requests"],
    ["max-concurrency", "max_concurrency"],
  ];
  for (const [flag, field] of counts) {
    if (text(flag) !== undefined) fields[field] = parseCount(text(flag)!, `--${flag}`);
  }
  if (text("ips") !== undefined) fields.allowed_ips = parseList(text("ips")!);
  if (text("models") !== undefined) fields.allowed_models = parseList(text("models")!);
  if (text("default-model") !== undefined) fields.default_model = text("default-model") || null;
  if (text("expires") !== undefined) fields.expires_at = parseExpiry(text("expires")!);
  const metadata = values.metadata as string[] | undefined;
  if (metadata) {
    fields.metadata = Object.fromEntries(metadata.map((pair) => {
      const at = pair.indexOf("=");
      if (at < 1) throw new CliError(`Invalid --metadata "${pair}": expected key=value`, 2);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }));
  }
  return fields;
}

type KeyView = Record<string, unknown> & {
  id: string;
  name: string;
  usage?: Record<string, unknown>;
};

function summary(key: KeyView): string {
  const usage = key.usage ?? {};
  return details({
    id: key.id,
    name: key.name,
    group: key.group,
    prefix: key.prefix,
    status: key.disabled ? "disabled" : "active",
    quota_tokens: limit(key.quota_tokens),
    used_tokens: usage.used_tokens ?? 0,
    daily_tokens: limit(key.daily_tokens),
    daily_requests: limit(key.daily_requests),
    rpm: limit(key.rpm),
    burst: limit(key.burst),
    tpm: limit(key.tpm),
    max_concurrency: limit(key.max_concurrency),
    allowed_ips: (key.allowed_ips as string[] | undefined)?.join(", ") || "any",
    allowed_models: (key.allowed_models as string[] | undefined)?.join(", ") || "*",
    default_model: key.default_model,
    expires_at: key.expires_at ?? "never",
    created_at: key.created_at,
  });
}

function id(positionals: string[], command: string): string {
  const value = positionals[0];
  if (!value) throw new CliError(`Missing key id: modelgate key ${command} ID`, 2);
  return encodeURIComponent(value);
}

/** Runs one `key` subcommand and returns what to print. */
export async function keyCommand(target: AdminTarget, args: string[]): Promise<string> {
  const [command, ...rest] = args;
  switch (command) {
    case "create": {
      const { values } = parseFlags(rest, LIMIT_FLAGS);
      if (!values.name) throw new CliError("Missing --name (-n): every key needs a name", 2);
      const created = await adminRequest(target, "POST", "/keys", fieldsFrom(values)) as {
        key: string;
        record: KeyView;
      };
      if (values.json) return JSON.stringify(created, null, 2);
      return `${summary(created.record)}\n\nAPI key (shown once, store it now):\n${created.key}`;
    }
    case "list": {
      const { values } = parseFlags(rest, {
        search: { type: "string", short: "s" },
        limit: { type: "string" },
        cursor: { type: "string" },
        json: { type: "boolean" },
      });
      const query = new URLSearchParams();
      if (values.search) query.set("search", values.search);
      if (values.limit) query.set("limit", String(parseCount(values.limit, "--limit")));
      if (values.cursor) query.set("cursor", values.cursor);
      const page = await adminRequest(target, "GET", `/keys?${query}`) as {
        data: KeyView[];
        next_cursor: string | null;
      };
      if (values.json) return JSON.stringify(page, null, 2);
      const rows = page.data.map((key) => [
        key.id,
        key.name,
        key.group as string,
        key.prefix as string,
        key.disabled ? "disabled" : "active",
        `${key.usage?.used_tokens ?? 0}/${limit(key.quota_tokens)}`,
        limit(key.rpm),
        (key.expires_at as string | null) ?? "never",
      ]);
      const out = table(
        ["ID", "NAME", "GROUP", "PREFIX", "STATUS", "TOKENS", "RPM", "EXPIRES"],
        rows,
      );
      return page.next_cursor ? `${out}\n(more: --cursor ${page.next_cursor})` : out;
    }
    case "show": {
      const { values, positionals } = parseFlags(rest, { json: { type: "boolean" } });
      const key = await adminRequest(target, "GET", `/keys/${id(positionals, "show")}`) as KeyView;
      return values.json ? JSON.stringify(key, null, 2) : summary(key);
    }
    case "update": {
      const { values, positionals } = parseFlags(rest, LIMIT_FLAGS);
      const fields = fieldsFrom(values);
      if (Object.keys(fields).length === 0) {
        throw new CliError("Nothing to update: pass at least one flag", 2);
      }
      const key = await adminRequest(
        target,
        "PATCH",
        `/keys/${id(positionals, "update")}`,
        fields,
      ) as KeyView;
      return values.json ? JSON.stringify(key, null, 2) : summary(key);
    }
    case "disable":
    case "enable": {
      const { values, positionals } = parseFlags(rest, { json: { type: "boolean" } });
      const key = await adminRequest(target, "PATCH", `/keys/${id(positionals, command)}`, {
        disabled: command === "disable",
      }) as KeyView;
      return values.json
        ? JSON.stringify(key, null, 2)
        : `Key ${key.id} (${key.name}) is now ${command}d`;
    }
    case "delete": {
      const { values, positionals } = parseFlags(rest, { json: { type: "boolean" } });
      const result = await adminRequest(target, "DELETE", `/keys/${id(positionals, "delete")}`);
      return values.json ? JSON.stringify(result, null, 2) : `Key ${positionals[0]} deleted`;
    }
    case "rotate": {
      const { values, positionals } = parseFlags(rest, {
        grace: { type: "string" },
        json: { type: "boolean" },
      });
      const grace = values.grace ? parseDuration(values.grace, "--grace") : 0;
      const rotated = await adminRequest(
        target,
        "POST",
        `/keys/${id(positionals, "rotate")}/rotate`,
        {
          grace_seconds: grace,
        },
      ) as { key: string; record: KeyView };
      if (values.json) return JSON.stringify(rotated, null, 2);
      const note = grace > 0
        ? `The old key keeps working for ${values.grace}.`
        : "The old key no longer works.";
      return `New API key for ${rotated.record.name} (shown once, store it now):\n${rotated.key}\n${note}`;
    }
    case "reset-usage": {
      const { values, positionals } = parseFlags(rest, { json: { type: "boolean" } });
      const key = await adminRequest(
        target,
        "POST",
        `/keys/${id(positionals, "reset-usage")}/reset-usage`,
      ) as KeyView;
      return values.json
        ? JSON.stringify(key, null, 2)
        : `Usage of key ${key.id} (${key.name}) reset`;
    }
    default:
      throw new CliError(
        `Unknown key command "${
          command ?? ""
        }": expected create, list, show, update, disable, enable, delete, rotate or reset-usage`,
        2,
      );
  }
}
