/** Loads and validates `config.yaml`; errors name the path in the file. */
import { parse as parseYaml } from "yaml";
import type { BackendConfig, BackendType, Timeouts } from "../adapters/types.ts";
import { ConfigError, substituteEnv } from "./config_env.ts";
import { Section } from "./config_read.ts";
import {
  checkFallbackCycles,
  type GroupConfig,
  type ModelPolicy,
  readGroups,
  readRouting,
  type RoutingConfig,
} from "./config_routing.ts";
import { type KeyDefaults, type KeyLimits, LIMIT_FIELDS } from "./store/model.ts";
import { minimumOf } from "./store/validate_key.ts";

export { ConfigError } from "./config_env.ts";
export type {
  GroupConfig,
  ModelPolicy,
  Priority,
  RoutingConfig,
  Strategy,
} from "./config_routing.ts";

export type { KeyDefaults } from "./store/model.ts";

/** The validated configuration. */
export interface Config {
  server: {
    host: string;
    port: number;
    tls: { certFile: string; keyFile: string } | null;
    trustedProxies: string[];
    maxBodyBytes: number;
    /** Largest non-streamed answer read from a backend (after decompression). */
    maxResponseBytes: number;
    /** Longest event (or line) of a streamed answer from a backend. */
    maxStreamEventBytes: number;
    /** How long a stop waits for in-flight requests before ending them. */
    shutdownTimeoutMs: number;
    /** Browser origins allowed to call /v1 and /api (exact `scheme://host[:port]`). */
    corsOrigins: string[];
  };
  admin: { apiKey: string | null };
  storage: { kv: string; usageRetentionDays: number };
  redis: { url: string | null; onError: "local" | "open" | "closed" };
  defaults: KeyDefaults;
  /**
   * Tokens reserved for a request without `max_tokens`; how long an instance's quota lease
   * outlives its last renewal.
   */
  quota: { defaultMaxTokens: number; leaseTtlSeconds: number };
  discovery: { intervalSeconds: number };
  backends: BackendConfig[];
  models: Record<string, ModelPolicy>;
  routing: RoutingConfig;
  /** Keyed by a key's `group`; a group not listed routes with the defaults. */
  groups: Record<string, GroupConfig>;
  /** Problems that do not stop start-up (e.g. a backend glob that matches nothing). */
  warnings: string[];
}

const BACKEND_TYPES: readonly BackendType[] = [
  "openai",
  "vllm",
  "llamacpp",
  "openai_compatible",
  "ollama",
];

/** Where each kind listens when the quick-start `adapters:` form leaves `base_url` out. */
const DEFAULT_BASE_URLS: Record<BackendType, string | null> = {
  ollama: "http://localhost:11434",
  vllm: "http://localhost:8000",
  llamacpp: "http://localhost:8080",
  openai: "https://api.openai.com/v1",
  openai_compatible: null,
};

const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 5_000, firstByteMs: 300_000, idleMs: 120_000 };
const BACKEND_KEYS = [
  "name",
  "type",
  "base_url",
  "api_key",
  "auth_header",
  "auth_prefix",
  "models",
  "weight",
  "max_concurrency",
  "timeouts",
  "headers",
  "responses",
] as const;

/** Parses config text; `env` supplies `${NAME}` values. Throws ConfigError. */
export function parseConfig(text: string, env: (name: string) => string | undefined): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      "",
      `the file is not valid YAML (${(err as Error).message.split("\n")[0]})`,
    );
  }
  const root = Section.of("", substituteEnv(raw, env)).only([
    "server",
    "admin",
    "storage",
    "redis",
    "defaults",
    "quota",
    "timeouts",
    "discovery",
    "adapters",
    "backends",
    "models",
    "routing",
    "groups",
  ]);
  const timeouts = readTimeouts(root.section("timeouts"), DEFAULT_TIMEOUTS);
  const backends = [
    ...readAdapters(root.section("adapters"), timeouts),
    ...(root.sections("backends") ?? []).map((s) => readBackend(s, s.string("type"), timeouts)),
  ];
  const names = new Set<string>();
  backends.forEach((backend, index) => {
    if (names.has(backend.name)) {
      throw new ConfigError(`backends[${index}].name`, `"${backend.name}" is used twice`);
    }
    names.add(backend.name);
  });
  const models = readModels(root.section("models"));
  const warnings: string[] = [];
  const groups = readGroups(root.section("groups"), { backends, models, warnings });
  checkFallbackCycles(models, groups);
  return {
    server: readServer(root.section("server")),
    admin: { apiKey: root.section("admin").only(["api_key"]).string("api_key") || null },
    storage: readStorage(root.section("storage")),
    redis: readRedis(root.section("redis")),
    defaults: readDefaults(root.section("defaults")),
    quota: readQuota(root.section("quota")),
    discovery: {
      intervalSeconds: root.section("discovery").only(["interval_seconds"])
        .number("interval_seconds", { min: 0, max: 86_400 }) ?? 60,
    },
    backends,
    models,
    routing: readRouting(root.section("routing")),
    groups,
    warnings,
  };
}

/** Reads and parses a config file. Throws ConfigError (also for a missing file). */
export async function loadConfig(
  path: string,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound ? "not found" : (err as Error).message;
    throw new ConfigError("", `cannot read "${path}": ${reason}`);
  }
  return parseConfig(text, env);
}

function readServer(s: Section): Config["server"] {
  s.only([
    "host",
    "port",
    "tls",
    "trusted_proxies",
    "max_body_bytes",
    "max_response_bytes",
    "max_stream_event_bytes",
    "shutdown_timeout_ms",
    "cors",
  ]);
  const tls = s.section("tls").only(["cert_file", "key_file"]);
  const certFile = tls.string("cert_file");
  const keyFile = tls.string("key_file");
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new ConfigError(tls.path, "set both cert_file and key_file, or neither");
  }
  return {
    host: s.string("host") ?? "0.0.0.0",
    port: s.number("port", { min: 0, max: 65_535 }) ?? 8080,
    tls: certFile && keyFile ? { certFile, keyFile } : null,
    trustedProxies: s.strings("trusted_proxies") ?? [],
    maxBodyBytes: s.number("max_body_bytes", { min: 1024, max: 1 << 30 }) ?? 10 * MIB,
    maxResponseBytes: s.number("max_response_bytes", { min: 1024, max: 1 << 30 }) ?? 64 * MIB,
    maxStreamEventBytes: s.number("max_stream_event_bytes", { min: 1024, max: 1 << 30 }) ??
      8 * MIB,
    shutdownTimeoutMs: s.number("shutdown_timeout_ms", { min: 0, max: 3_600_000 }) ?? 25_000,
    corsOrigins: readCorsOrigins(s.section("cors")),
  };
}

const MIB = 1024 * 1024;

/** Exact origins only: a wildcard would let every web page spend a key a browser holds. */
function readCorsOrigins(s: Section): string[] {
  s.only(["allowed_origins"]);
  const origins = s.strings("allowed_origins") ?? [];
  return origins.map((origin, index) => {
    let url: URL | null = null;
    try {
      url = new URL(origin);
    } catch {
      // Reported below.
    }
    // URL accepts "*" in a host name, where it would match no browser's origin.
    if (
      !url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== origin ||
      origin.includes("*")
    ) {
      throw new ConfigError(
        `${s.at("allowed_origins")}[${index}]`,
        'expected an origin such as "https://app.example.com" (no path, no wildcard)',
      );
    }
    return origin;
  });
}

function readQuota(s: Section): Config["quota"] {
  s.only(["default_max_tokens", "lease_ttl_seconds"]);
  return {
    defaultMaxTokens: s.number("default_max_tokens", { min: 1, max: 10_000_000 }) ?? 4096,
    leaseTtlSeconds: s.number("lease_ttl_seconds", { min: 3, max: 3600 }) ?? 30,
  };
}

function readStorage(s: Section): Config["storage"] {
  s.only(["kv", "usage_retention_days"]);
  return {
    kv: s.string("kv") ?? "./data/modelgate.kv",
    usageRetentionDays: s.number("usage_retention_days", { min: 1, max: 3650 }) ?? 90,
  };
}

function readRedis(s: Section): Config["redis"] {
  s.only(["url", "on_error"]);
  const url = s.string("url") || null;
  if (url && !/^rediss?:\/\//.test(url)) {
    throw new ConfigError(s.at("url"), "expected a redis:// or rediss:// URL");
  }
  return { url, onError: s.oneOf("on_error", ["local", "open", "closed"] as const) ?? "local" };
}

function readDefaults(s: Section): KeyDefaults {
  s.only([...LIMIT_FIELDS, "allowed_models", "allowed_ips"]);
  const read = (key: keyof KeyLimits) =>
    s.number(key, { min: minimumOf(key), max: Number.MAX_SAFE_INTEGER }) ?? null;
  return {
    quota_tokens: read("quota_tokens"),
    daily_tokens: read("daily_tokens"),
    daily_requests: read("daily_requests"),
    rpm: read("rpm"),
    burst: read("burst"),
    tpm: read("tpm"),
    max_concurrency: read("max_concurrency"),
    allowed_models: s.strings("allowed_models") ?? ["*"],
    allowed_ips: s.strings("allowed_ips") ?? [],
  };
}

function readTimeouts(s: Section, base: Timeouts): Timeouts {
  s.only(["connect_ms", "first_byte_ms", "idle_ms"]);
  const ms = (key: string) => s.number(key, { min: 1, max: 86_400_000 });
  return {
    connectMs: ms("connect_ms") ?? base.connectMs,
    firstByteMs: ms("first_byte_ms") ?? base.firstByteMs,
    idleMs: ms("idle_ms") ?? base.idleMs,
  };
}

/** The quick-start form: `adapters: { ollama: { base_url } }` names a backend after its kind. */
function readAdapters(s: Section, timeouts: Timeouts): BackendConfig[] {
  s.only(BACKEND_TYPES);
  return Object.keys(s.data).map((type) => {
    const entry = s.section(type);
    if (!entry.data.name) entry.data.name = type;
    return readBackend(entry, type, timeouts);
  });
}

function readBackend(s: Section, type: string | undefined, timeouts: Timeouts): BackendConfig {
  s.only(BACKEND_KEYS);
  const name = s.string("name");
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new ConfigError(s.at("name"), "expected a name of letters, digits, '_', '.' or '-'");
  }
  if (!type || !(BACKEND_TYPES as readonly string[]).includes(type)) {
    throw new ConfigError(s.at("type"), `expected one of: ${BACKEND_TYPES.join(", ")}`);
  }
  const kind = type as BackendType;
  const baseUrl = s.url("base_url") ?? DEFAULT_BASE_URLS[kind];
  if (!baseUrl) throw new ConfigError(s.at("base_url"), "expected an http(s) URL");
  const headers = s.section("headers");
  return {
    name,
    type: kind,
    baseUrl,
    apiKey: s.string("api_key") || null,
    authHeader: s.string("auth_header") ?? "Authorization",
    authPrefix: s.string("auth_prefix") ?? "Bearer ",
    models: s.strings("models") ?? null,
    weight: s.number("weight", { min: 0, max: 1000, integer: false }) ?? 1,
    maxConcurrency: s.number("max_concurrency", { min: 0, max: 1_000_000 }) ?? 0,
    timeouts: readTimeouts(s.section("timeouts"), timeouts),
    headers: Object.fromEntries(
      Object.keys(headers.data).map((key) => [key, headers.string(key) ?? ""]),
    ),
    // OpenAI serves the Responses API; other servers say so with `responses: true`.
    responses: s.boolean("responses") ?? kind === "openai",
  };
}

function readModels(s: Section): Record<string, ModelPolicy> {
  const models: Record<string, ModelPolicy> = {};
  for (const name of Object.keys(s.data)) {
    const m = s.section(name).only(["aliases", "fallbacks", "price"]);
    const price = m.section("price").only(["input", "output"]);
    const cost = (key: string) => price.number(key, { min: 0, max: 1e9, integer: false }) ?? 0;
    models[name] = {
      aliases: m.strings("aliases") ?? [],
      fallbacks: m.strings("fallbacks") ?? [],
      price: { input: cost("input"), output: cost("output") },
    };
  }
  return models;
}
