/**
 * In which order a request of a group is tried: the model (after the group's aliases, then the
 * global ones), then its fallbacks depth-first, each a tier of the backends the group may use.
 */
import type { GroupConfig, ModelPolicy } from "../config.ts";
import type { Catalog } from "./catalog.ts";
import { PRIORITY_RANK } from "./queue.ts";
import type { ListedModel } from "./types.ts";

/** One model to try and the backends that may serve it for this group, in config order. */
export interface Tier {
  model: string;
  backends: readonly string[];
}

/** A group's routing rules, with the defaults filled in. */
export interface GroupPolicy {
  name: string;
  /** Queue lane: 0 high, 1 normal, 2 low. */
  rank: number;
  /** Longest wait for a slot, in ms (0: never wait). */
  maxQueueMs: number;
  /** Backends the group may use, or null for all. */
  allowed: ReadonlySet<string> | null;
  aliases: Readonly<Record<string, string>>;
  fallbacks: Readonly<Record<string, string[]>>;
}

/** Options for {@linkcode Policy}. */
export interface PolicyOptions {
  catalog: Catalog;
  groups: Record<string, GroupConfig>;
  models: Record<string, ModelPolicy>;
  /** The wait of groups without their own `max_queue_ms`. */
  queueTimeoutMs: number;
}

/** Plans are cached per group and model; client-chosen names make the cache bounded. */
const MAX_CACHED_PLANS = 10_000;

/** Plans the tiers of a request and lists what a group can reach. */
export class Policy {
  #catalog: Catalog;
  #models: Record<string, ModelPolicy>;
  #groups = new Map<string, GroupPolicy>();
  /** The rules of every group not in the config (one object: their plans are the same). */
  #defaults: GroupPolicy;
  #plans = new Map<string, Tier[]>();
  #version = -1;

  constructor(options: PolicyOptions) {
    this.#catalog = options.catalog;
    this.#models = options.models;
    this.#defaults = {
      name: "",
      rank: PRIORITY_RANK.normal,
      maxQueueMs: options.queueTimeoutMs,
      allowed: null,
      aliases: {},
      fallbacks: {},
    };
    for (const [name, group] of Object.entries(options.groups)) {
      this.#groups.set(name, {
        name,
        rank: PRIORITY_RANK[group.priority],
        maxQueueMs: group.maxQueueMs ?? options.queueTimeoutMs,
        allowed: group.backends ? new Set(group.backends) : null,
        aliases: group.models,
        fallbacks: group.fallbacks,
      });
    }
  }

  /** A group's rules; a group not in the config gets the defaults (named ""). */
  group(name: string): GroupPolicy {
    return this.#groups.get(name) ?? this.#defaults;
  }

  /** The model a name stands for in a group: group aliases, then global aliases. */
  canonical(model: string, group: string): string {
    const aliased = this.#groups.get(group)?.aliases[model];
    return this.#catalog.canonical(aliased ?? model);
  }

  /** Fallbacks of a model for a group (the group's own, else the model's), canonical. */
  #fallbacks(model: string, group: GroupPolicy): string[] {
    const list = group.fallbacks[model] ?? this.#models[model]?.fallbacks ?? [];
    return list.map((name) => this.#catalog.canonical(name));
  }

  /** The tiers to try for a canonical model; empty when nothing serves it for this group. */
  plan(model: string, group: GroupPolicy): readonly Tier[] {
    if (this.#version !== this.#catalog.version) {
      this.#plans.clear();
      this.#version = this.#catalog.version;
    }
    const key = `${group.name}\u0000${model}`;
    let tiers = this.#plans.get(key);
    if (!tiers) {
      tiers = this.#build(model, group);
      if (this.#plans.size >= MAX_CACHED_PLANS) this.#plans.clear();
      this.#plans.set(key, tiers);
    }
    return tiers;
  }

  /** Every name a key of this group can use: served models and aliases that lead somewhere. */
  list(groupName: string): ListedModel[] {
    const group = this.group(groupName);
    const names = new Set<string>();
    for (const [model] of this.#catalog.entries()) names.add(model);
    for (const [alias] of this.#catalog.aliases()) names.add(alias);
    for (const alias of Object.keys(group.aliases)) names.add(alias);
    const out: ListedModel[] = [];
    for (const id of names) {
      const first = this.plan(this.canonical(id, groupName), group)[0];
      if (!first) continue;
      const served = this.#catalog.servers(first.model).find((s) =>
        s.backend === first.backends[0]
      );
      out.push({ id, created: served?.created ?? 0, owned_by: first.backends[0] });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  #build(model: string, group: GroupPolicy): Tier[] {
    const tiers: Tier[] = [];
    const seen = new Set<string>();
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const backends = this.#catalog.servers(name).map((s) => s.backend)
        .filter((backend) => !group.allowed || group.allowed.has(backend));
      if (backends.length > 0) tiers.push({ model: name, backends });
      for (const next of this.#fallbacks(name, group)) visit(next);
    };
    visit(model);
    return tiers;
  }
}
