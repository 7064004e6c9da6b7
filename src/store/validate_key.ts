/** Validation of key fields from the admin API; every error names the field. */
import { invalidRequest } from "../errors.ts";
import { parseRange } from "../net/ip.ts";
import { type KeyFields, type KeyLimits, LIMIT_FIELDS } from "./model.ts";

const ALLOWED = new Set<string>([
  ...LIMIT_FIELDS,
  "name",
  "group",
  "expires_at",
  "disabled",
  "allowed_ips",
  "allowed_models",
  "default_model",
  "metadata",
]);

/** Checks a JSON body of key fields; `requireName` for creation. Throws 400 naming the field. */
export function validateKeyFields(input: unknown, requireName: boolean): KeyFields {
  if (!input || typeof input !== "object" || Array.isArray(input)) {
    throw invalidRequest("Request body must be a JSON object");
  }
  const body = input as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!ALLOWED.has(key)) throw invalidRequest(`Unknown field "${key}"`, key);
  }
  const out: KeyFields = {};
  if (body.name !== undefined || requireName) {
    if (typeof body.name !== "string" || body.name.trim() === "" || body.name.length > 200) {
      throw invalidRequest("Field must be a non-empty string of at most 200 characters", "name");
    }
    out.name = body.name.trim();
  }
  if (body.group !== undefined) {
    if (typeof body.group !== "string" || body.group.length > 100) {
      throw invalidRequest("Field must be a string of at most 100 characters", "group");
    }
    out.group = body.group.trim();
  }
  for (const field of LIMIT_FIELDS) {
    const value = body[field];
    if (value === undefined) continue;
    const min = minimumOf(field);
    if (
      value !== null && (typeof value !== "number" || !Number.isSafeInteger(value) || value < min)
    ) {
      throw invalidRequest(
        `Field must be a whole number of at least ${min}, or null for unlimited`,
        field,
      );
    }
    out[field] = value as number | null;
  }
  if (body.expires_at !== undefined) {
    if (
      body.expires_at !== null &&
      (typeof body.expires_at !== "string" || Number.isNaN(Date.parse(body.expires_at)))
    ) {
      throw invalidRequest("Field must be an ISO date or null", "expires_at");
    }
    out.expires_at = body.expires_at === null
      ? null
      : new Date(body.expires_at as string).toISOString();
  }
  if (body.disabled !== undefined) {
    if (typeof body.disabled !== "boolean") {
      throw invalidRequest("Field must be a boolean", "disabled");
    }
    out.disabled = body.disabled;
  }
  if (body.allowed_ips !== undefined) out.allowed_ips = ipList(body.allowed_ips);
  if (body.allowed_models !== undefined) out.allowed_models = modelList(body.allowed_models);
  if (body.default_model !== undefined) {
    if (
      body.default_model !== null &&
      (typeof body.default_model !== "string" || body.default_model === "")
    ) {
      throw invalidRequest("Field must be a model name or null", "default_model");
    }
    out.default_model = body.default_model as string | null;
  }
  if (body.metadata !== undefined) out.metadata = metadata(body.metadata);
  return out;
}

/**
 * Budgets may be 0 (nothing left to spend); a rate of 0 would refuse every request for ever with
 * no time to wait, so rates start at 1 (disable the key to stop it).
 */
export function minimumOf(field: keyof KeyLimits): number {
  return RATE_FIELDS.has(field) ? 1 : 0;
}

const RATE_FIELDS = new Set<keyof KeyLimits>(["rpm", "burst", "tpm", "max_concurrency"]);

function stringList(value: unknown, field: string): string[] {
  if (
    !Array.isArray(value) || value.some((item) => typeof item !== "string" || item.trim() === "")
  ) {
    throw invalidRequest("Field must be a list of non-empty strings", field);
  }
  if (value.length > 1000) throw invalidRequest("List has more than 1000 entries", field);
  return value.map((item) => item.trim());
}

function ipList(value: unknown): string[] {
  const list = stringList(value, "allowed_ips");
  list.forEach((entry, index) => {
    if (!parseRange(entry)) {
      throw invalidRequest(
        `"${entry}" is not an IP address or CIDR range`,
        `allowed_ips[${index}]`,
      );
    }
  });
  return list;
}

function modelList(value: unknown): string[] {
  const list = stringList(value, "allowed_models");
  list.forEach((entry, index) => {
    if (entry.length > 256) {
      throw invalidRequest("Model pattern is too long", `allowed_models[${index}]`);
    }
  });
  return list;
}

function metadata(value: unknown): Record<string, string> {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest("Field must be an object of strings", "metadata");
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 50) throw invalidRequest("At most 50 metadata entries", "metadata");
  for (const [key, item] of entries) {
    if (typeof item !== "string" || item.length > 1000 || key.length > 100) {
      throw invalidRequest(
        "Metadata values must be strings of at most 1000 characters",
        `metadata.${key}`,
      );
    }
  }
  return value as Record<string, string>;
}
