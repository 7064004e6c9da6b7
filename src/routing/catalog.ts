/** Who serves model M: the configured model lists, the discovered ones, and the global aliases. */
import type { Adapter, UpstreamModel } from "../../adapters/types.ts";
import { globalAliases, type ModelPolicy } from "../config_routing.ts";

/** One backend serving one model. */
export interface Served {
  backend: string;
  created: number;
}

/** Options for {@linkcode Catalog}. */
export interface CatalogOptions {
  adapters: readonly Adapter[];
  models: Record<string, ModelPolicy>;
  now: () => number;
}

/** Maps model names to the backends serving them; rebuilt when a discovered list changes. */
export class Catalog {
  #adapters: readonly Adapter[];
  #aliases: Map<string, string>;
  #aliasesOf = new Map<string, string[]>();
  #discovered = new Map<string, { id: string; created: number }[]>();
  #served = new Map<string, Served[]>();
  #now: () => number;
  /** Bumped on every rebuild, so plans cached against an older catalog are dropped. */
  version = 0;

  constructor(options: CatalogOptions) {
    this.#adapters = options.adapters;
    this.#now = options.now;
    this.#aliases = globalAliases(options.models);
    for (const [alias, model] of this.#aliases) {
      this.#aliasesOf.set(model, [...(this.#aliasesOf.get(model) ?? []), alias]);
    }
    this.#rebuild();
  }

  /** Whether a backend's models come from its own list (no `models:` in the config). */
  discovers(adapter: Adapter): boolean {
    return adapter.config.models === null;
  }

  /** Takes the model list a backend answered with. */
  discovered(backend: string, models: UpstreamModel[]): void {
    const seconds = Math.floor(this.#now() / 1000);
    const next = models.map((m) => ({ id: m.id, created: m.created ?? seconds }));
    const previous = this.#discovered.get(backend);
    const same = previous?.length === next.length &&
      previous.every((m, i) => m.id === next[i].id && m.created === next[i].created);
    if (same) return;
    this.#discovered.set(backend, next);
    this.#rebuild();
  }

  /** The model a global alias stands for (the name itself otherwise). */
  canonical(name: string): string {
    return this.#aliases.get(name) ?? name;
  }

  /** Global aliases of a model. */
  aliasesOf(model: string): readonly string[] {
    return this.#aliasesOf.get(model) ?? [];
  }

  /** Backends serving a model, in config order. */
  servers(model: string): readonly Served[] {
    return this.#served.get(model) ?? [];
  }

  /** Every served model with its backends. */
  entries(): IterableIterator<[string, Served[]]> {
    return this.#served.entries();
  }

  /** Global aliases and the models they stand for. */
  aliases(): IterableIterator<[string, string]> {
    return this.#aliases.entries();
  }

  /** Models one backend serves. */
  modelsOf(backend: string): string[] {
    const out: string[] = [];
    for (const [model, served] of this.#served) {
      if (served.some((s) => s.backend === backend)) out.push(model);
    }
    return out.sort();
  }

  #rebuild(): void {
    const served = new Map<string, Served[]>();
    const seconds = Math.floor(this.#now() / 1000);
    for (const adapter of this.#adapters) {
      const name = adapter.config.name;
      const models = adapter.config.models?.map((id) => ({ id, created: seconds })) ??
        this.#discovered.get(name) ?? [];
      for (const model of models) {
        const list = served.get(model.id) ?? [];
        if (!list.some((s) => s.backend === name)) {
          list.push({ backend: name, created: model.created });
        }
        served.set(model.id, list);
      }
    }
    this.#served = served;
    this.version++;
  }
}
