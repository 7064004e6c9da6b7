/** Which backends serve which model: from the config, or discovered from each backend's list. */
import type { Adapter } from "../../adapters/types.ts";
import type { ModelPolicy } from "../config.ts";
import { modelNotFound, noBackendAvailable } from "../errors.ts";
import type { Logger } from "../log.ts";

/** Where one request goes. */
export interface Route {
  adapter: Adapter;
  /** The name the backend knows the model by. */
  upstreamModel: string;
  /** The canonical model name (after alias resolution). */
  model: string;
}

/** A model as `GET /v1/models` lists it. */
export interface ListedModel {
  id: string;
  created: number;
  owned_by: string;
}

/** Options for {@linkcode ModelRegistry}. */
export interface RegistryOptions {
  adapters: Adapter[];
  policies: Record<string, ModelPolicy>;
  log: Logger;
  /** Random source for weighted choice; injectable for tests. */
  random?: () => number;
  now?: () => number;
}

interface Served {
  adapter: Adapter;
  created: number;
}

/** Maps model names to backends; several backends may serve one model. */
export class ModelRegistry {
  #adapters: Adapter[];
  #policies: Record<string, ModelPolicy>;
  #aliases = new Map<string, string>();
  #served = new Map<string, Served[]>();
  #discovered = new Map<string, { id: string; created: number }[]>();
  #healthy = new Map<string, boolean>();
  #log: Logger;
  #random: () => number;
  #now: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: RegistryOptions) {
    this.#adapters = options.adapters;
    this.#policies = options.policies;
    this.#log = options.log;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    for (const [name, policy] of Object.entries(this.#policies)) {
      for (const alias of policy.aliases) this.#aliases.set(alias, name);
    }
    this.#rebuild();
  }

  /** Backends in the order of the config. */
  get adapters(): readonly Adapter[] {
    return this.#adapters;
  }

  /** Whether the last discovery of a backend succeeded (configured-only backends count as up). */
  isHealthy(backend: string): boolean {
    return this.#healthy.get(backend) ?? true;
  }

  /** Asks every backend without a configured model list for its models. Never throws. */
  async refresh(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.#adapters.map(async (adapter) => {
      if (adapter.config.models !== null) return;
      try {
        const models = await adapter.listModels(signal);
        const seconds = Math.floor(this.#now() / 1000);
        this.#discovered.set(
          adapter.config.name,
          models.map((m) => ({ id: m.id, created: m.created ?? seconds })),
        );
        this.#healthy.set(adapter.config.name, true);
      } catch (err) {
        if (this.#healthy.get(adapter.config.name) !== false) {
          this.#log.warn("backend model discovery failed", {
            backend: adapter.config.name,
            error: (err as Error).message,
          });
        }
        this.#healthy.set(adapter.config.name, false);
      }
    }));
    this.#rebuild();
  }

  /** Refreshes now and then every `intervalSeconds` (0 = only once). */
  async start(intervalSeconds: number): Promise<void> {
    await this.refresh();
    if (intervalSeconds > 0) {
      this.#timer = setInterval(() => this.refresh(), intervalSeconds * 1000);
    }
  }

  /** Stops periodic discovery. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** The canonical name for a model name or alias. */
  canonical(model: string): string {
    return this.#aliases.get(model) ?? model;
  }

  /** Picks a backend for a model, trying its fallbacks in order. Throws 404 or 503. */
  resolve(requested: string): Route {
    const model = this.canonical(requested);
    const candidates = [model, ...(this.#policies[model]?.fallbacks ?? [])];
    let known = false;
    for (const name of candidates) {
      // A fallback may name an alias: the backend is sent the model it stands for.
      const target = this.canonical(name);
      const served = this.#served.get(target);
      if (!served || served.length === 0) continue;
      known = true;
      const usable = served.filter((s) => s.adapter.config.weight > 0);
      const chosen = this.#pick(usable);
      if (chosen) return { adapter: chosen.adapter, upstreamModel: target, model: target };
    }
    if (known) throw noBackendAvailable(requested);
    throw modelNotFound(requested);
  }

  /** Every model any backend serves, plus aliases, sorted by name. */
  list(): ListedModel[] {
    const out: ListedModel[] = [];
    for (const [id, served] of this.#served) {
      out.push({ id, created: served[0].created, owned_by: served[0].adapter.config.name });
    }
    for (const [alias, target] of this.#aliases) {
      const served = this.#served.get(target);
      if (served && !this.#served.has(alias)) {
        out.push({
          id: alias,
          created: served[0].created,
          owned_by: served[0].adapter.config.name,
        });
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  #pick(served: Served[]): Served | null {
    if (served.length <= 1) return served[0] ?? null;
    const total = served.reduce((sum, s) => sum + s.adapter.config.weight, 0);
    let point = this.#random() * total;
    for (const s of served) {
      point -= s.adapter.config.weight;
      if (point < 0) return s;
    }
    return served[served.length - 1];
  }

  #rebuild(): void {
    const served = new Map<string, Served[]>();
    const seconds = Math.floor(this.#now() / 1000);
    for (const adapter of this.#adapters) {
      const models = adapter.config.models?.map((id) => ({ id, created: seconds })) ??
        this.#discovered.get(adapter.config.name) ?? [];
      for (const model of models) {
        const list = served.get(model.id) ?? [];
        list.push({ adapter, created: model.created });
        served.set(model.id, list);
      }
    }
    this.#served = served;
  }
}
