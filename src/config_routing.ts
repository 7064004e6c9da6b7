/** Reads `routing:` and `groups:`, and checks them against the backends and models they name. */
import type { BackendConfig } from "../adapters/types.ts";
import { ConfigError } from "./config_env.ts";
import type { Section } from "./config_read.ts";
import { globRegExp, isGlob } from "./glob.ts";

/** How a group's requests are ordered in a model's queue. */
export type Priority = "high" | "normal" | "low";

/** How a backend is chosen among the free candidates. */
export type Strategy = "least_busy" | "weighted";

/** Per-model policy under `models:`. */
export interface ModelPolicy {
  /** Other names clients may use for this model. */
  aliases: string[];
  /** Models to try, in order, when no backend of this one is usable. */
  fallbacks: string[];
  /** Price in the operator's currency per 1M input/output tokens. */
  price: { input: number; output: number };
}

/** `routing:`: how requests are spread, queued, retried, and how backends are health-checked. */
export interface RoutingConfig {
  strategy: Strategy;
  /** Further backends tried for one request that fails before its first byte. */
  retries: number;
  /** Longest wait for a free slot, for groups without their own `max_queue_ms`. */
  queueTimeoutMs: number;
  /** Requests that may wait per model; beyond it a request moves on at once. */
  maxQueue: number;
  health: {
    /** Active probe period; 0 turns probing off. */
    intervalSeconds: number;
    /** Consecutive failures (requests or probes) that eject a backend. */
    failuresToEject: number;
    /** First ejection; doubles per repeat up to 300 s. */
    ejectSeconds: number;
  };
}

/** `groups.<name>`: what the keys of one group may use, and how they wait. */
export interface GroupConfig {
  priority: Priority;
  /** Names of the backends the group may use (its globs resolved), or null for all. */
  backends: string[] | null;
  /** Longest wait for a slot; null means `routing.queue_timeout_ms`. */
  maxQueueMs: number | null;
  /** Group aliases: name sent -> model served. */
  models: Record<string, string>;
  /** Per-model fallbacks that replace `models.<m>.fallbacks` for this group. */
  fallbacks: Record<string, string[]>;
}

const MAX_WAIT_MS = 3_600_000;

/** Reads `routing:`; every setting has a default. */
export function readRouting(s: Section): RoutingConfig {
  s.only(["strategy", "retries", "queue_timeout_ms", "max_queue", "health"]);
  const health = s.section("health").only([
    "interval_seconds",
    "failures_to_eject",
    "eject_seconds",
  ]);
  return {
    strategy: s.oneOf("strategy", ["least_busy", "weighted"] as const) ?? "least_busy",
    retries: s.number("retries", { min: 0, max: 10 }) ?? 2,
    queueTimeoutMs: s.number("queue_timeout_ms", { min: 0, max: MAX_WAIT_MS }) ?? 30_000,
    maxQueue: s.number("max_queue", { min: 0, max: 100_000 }) ?? 1000,
    health: {
      intervalSeconds: health.number("interval_seconds", { min: 0, max: 3600, integer: false }) ??
        5,
      failuresToEject: health.number("failures_to_eject", { min: 1, max: 1000 }) ?? 3,
      ejectSeconds: health.number("eject_seconds", { min: 1, max: 300 }) ?? 10,
    },
  };
}

/** What group validation checks against. */
export interface GroupContext {
  backends: BackendConfig[];
  models: Record<string, ModelPolicy>;
  /** Collects problems that do not stop start-up. */
  warnings: string[];
}

/** Reads `groups:`; a plain backend name that does not exist is an error, an empty glob a warning. */
export function readGroups(s: Section, context: GroupContext): Record<string, GroupConfig> {
  const groups: Record<string, GroupConfig> = {};
  for (const name of Object.keys(s.data)) {
    const g = s.section(name).only(["priority", "backends", "max_queue_ms", "models", "fallbacks"]);
    const backends = resolveBackends(g, context);
    const group: GroupConfig = {
      priority: g.oneOf("priority", ["high", "normal", "low"] as const) ?? "normal",
      backends,
      maxQueueMs: g.number("max_queue_ms", { min: 0, max: MAX_WAIT_MS }) ?? null,
      models: readAliases(g.section("models")),
      fallbacks: readFallbacks(g.section("fallbacks")),
    };
    checkAliasTargets(g.section("models"), group, context);
    groups[name] = group;
  }
  return groups;
}

function resolveBackends(g: Section, context: GroupContext): string[] | null {
  const patterns = g.strings("backends");
  if (!patterns) return null;
  const names = context.backends.map((b) => b.name);
  const chosen = new Set<string>();
  patterns.forEach((pattern, index) => {
    const at = `${g.at("backends")}[${index}]`;
    const matched = isGlob(pattern)
      ? names.filter((n) => globRegExp(pattern).test(n))
      : names.filter((n) => n === pattern);
    if (matched.length === 0 && !isGlob(pattern)) {
      throw new ConfigError(at, `no backend is named "${pattern}"`);
    }
    if (matched.length === 0) {
      context.warnings.push(`Config warning at "${at}": "${pattern}" matches no backend`);
    }
    for (const n of matched) chosen.add(n);
  });
  return names.filter((n) => chosen.has(n));
}

function readAliases(s: Section): Record<string, string> {
  const aliases: Record<string, string> = {};
  for (const name of Object.keys(s.data)) {
    const target = s.string(name);
    if (!target) throw new ConfigError(s.at(name), "expected a model name");
    aliases[name] = target;
  }
  return aliases;
}

function readFallbacks(s: Section): Record<string, string[]> {
  const fallbacks: Record<string, string[]> = {};
  for (const name of Object.keys(s.data)) fallbacks[name] = s.strings(name) ?? [];
  return fallbacks;
}

/** Global aliases resolved: the model a name stands for under `models:`. */
export function globalAliases(models: Record<string, ModelPolicy>): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const [name, policy] of Object.entries(models)) {
    for (const alias of policy.aliases) aliases.set(alias, name);
  }
  return aliases;
}

/**
 * A group alias must lead to a model one of the group's backends serves. Only checkable when all
 * of them list their models in the config; discovered lists are known at run time only.
 */
function checkAliasTargets(s: Section, group: GroupConfig, context: GroupContext): void {
  const usable = context.backends.filter((b) => !group.backends || group.backends.includes(b.name));
  if (usable.length === 0 || usable.some((b) => b.models === null)) return;
  const served = new Set(usable.flatMap((b) => b.models ?? []));
  const aliases = globalAliases(context.models);
  for (const [name, target] of Object.entries(group.models)) {
    const model = aliases.get(target) ?? target;
    if (!served.has(model)) {
      throw new ConfigError(
        s.at(name),
        `"${target}" is not served by any backend this group may use`,
      );
    }
  }
}

/**
 * Refuses fallback chains that loop, globally and per group (a group's own fallbacks replace the
 * model's). The error names where the edge that closes the loop was configured.
 */
export function checkFallbackCycles(
  models: Record<string, ModelPolicy>,
  groups: Record<string, GroupConfig>,
): void {
  const aliases = globalAliases(models);
  const canonical = (name: string) => aliases.get(name) ?? name;
  const graphs: [string | null, GroupConfig | null][] = [[null, null]];
  for (const [name, group] of Object.entries(groups)) {
    if (Object.keys(group.fallbacks).length > 0) graphs.push([name, group]);
  }
  for (const [groupName, group] of graphs) {
    const edges = (model: string) => {
      const own = group?.fallbacks[model];
      const list = own ?? models[model]?.fallbacks ?? [];
      const path = own ? `groups.${groupName}.fallbacks.${model}` : `models.${model}.fallbacks`;
      return { path, next: list.map(canonical) };
    };
    const done = new Set<string>();
    for (const start of [...Object.keys(models), ...Object.keys(group?.fallbacks ?? {})]) {
      findCycle(canonical(start), edges, done);
    }
  }
}

/** Depth-first search; `done` holds models already known to start no cycle. */
function findCycle(
  start: string,
  edges: (model: string) => { path: string; next: string[] },
  done: Set<string>,
): void {
  const trail: string[] = [];
  const visit = (model: string) => {
    if (done.has(model)) return;
    const at = trail.indexOf(model);
    if (at !== -1) {
      const loop = [...trail.slice(at), model];
      throw new ConfigError(
        edges(trail[trail.length - 1]).path,
        `fallbacks form a cycle: ${loop.join(" -> ")}`,
      );
    }
    trail.push(model);
    for (const next of edges(model).next) visit(next);
    trail.pop();
    done.add(model);
  };
  visit(start);
}
