/** createRouter(): the catalog, the policy, the dispatcher and the prober wired into one Router. */
import type { Adapter } from "../../adapters/types.ts";
import type { Config } from "../config.ts";
import { modelNotFound } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { Backend } from "./backend.ts";
import { Catalog } from "./catalog.ts";
import { type Clock, systemClock } from "./clock.ts";
import { Dispatcher, isBackendFailure } from "./dispatch.ts";
import { Health } from "./health.ts";
import { countAttempts, watchRouter } from "./metrics.ts";
import { Policy } from "./policy.ts";
import { Prober, type ProbeResult } from "./probe.ts";
import type { BackendView, ModelView, Router } from "./types.ts";

/** Options for {@linkcode createRouter}. */
export interface RouterOptions {
  adapters: readonly Adapter[];
  config: Pick<Config, "models" | "routing" | "groups" | "discovery">;
  log: Logger;
  clock?: Clock;
  /** Random source for tie-breaks and weighted choice. */
  random?: () => number;
  metrics?: Metrics;
}

/** Builds the router of a fleet. Nothing runs until `start()`. */
export function createRouter(options: RouterOptions): Router {
  const { adapters, config, log } = options;
  const { routing } = config;
  const clock = options.clock ?? systemClock;
  const now = () => clock.now();
  const backends = new Map<string, Backend>();
  for (const adapter of adapters) {
    const health = new Health({
      failuresToEject: routing.health.failuresToEject,
      ejectMs: routing.health.ejectSeconds * 1000,
      now,
    });
    backends.set(adapter.config.name, new Backend(adapter, health));
  }
  const catalog = new Catalog({ adapters, models: config.models, now });
  const policy = new Policy({
    catalog,
    groups: config.groups,
    models: config.models,
    queueTimeoutMs: routing.queueTimeoutMs,
  });
  const dispatcher = new Dispatcher({
    backends,
    strategy: routing.strategy,
    retries: routing.retries,
    maxQueue: routing.maxQueue,
    clock,
    random: options.random,
    onAttempt: options.metrics ? countAttempts(options.metrics) : undefined,
    onHealth(backend, change) {
      if ("readmitted" in change) {
        log.info("backend readmitted", { backend: backend.name });
      } else {
        log.warn("backend ejected", {
          backend: backend.name,
          seconds: change.ejectedMs / 1000,
          consecutive_failures: backend.health.consecutiveFailures,
          error: backend.health.lastError,
        });
      }
    },
  });
  const prober = createProber({ adapters, config, clock, catalog, dispatcher, backends, log });

  const router: Router = {
    list: (group) => policy.list(group),
    plan(model, groupName) {
      const group = policy.group(groupName);
      const canonical = policy.canonical(model, groupName);
      return { model: canonical, group, tiers: policy.plan(canonical, group) };
    },
    route(plan, request, attempt) {
      if (plan.tiers.length === 0) return Promise.reject(modelNotFound(request.model));
      return dispatcher.route(plan.tiers, plan.group, request, attempt);
    },
    snapshot: () => [...backends.values()].map((b) => view(b, dispatcher, catalog)),
    models() {
      const out: ModelView[] = [];
      for (const [id, served] of catalog.entries()) {
        out.push({
          id,
          backends: served.map((s) => s.backend),
          aliases: [...catalog.aliasesOf(id)],
          fallbacks: (config.models[id]?.fallbacks ?? []).map((m) => catalog.canonical(m)),
          queued: dispatcher.queued(id),
          created: served[0].created,
        });
      }
      return out.sort((a, b) => a.id.localeCompare(b.id));
    },
    queueDepths() {
      const depths = dispatcher.depths();
      for (const [id] of catalog.entries()) if (!depths.has(id)) depths.set(id, 0);
      return depths;
    },
    ready: () => [...backends.values()].some((b) => !b.health.isEjected()),
    start: () => prober.start(),
    stop: () => prober.stop(),
  };
  if (options.metrics) watchRouter(options.metrics, router);
  return router;
}

function view(backend: Backend, dispatcher: Dispatcher, catalog: Catalog): BackendView {
  const until = backend.health.ejectedUntil;
  return {
    name: backend.name,
    type: backend.adapter.config.type,
    state: backend.health.state,
    healthy: backend.health.state === "healthy",
    in_flight: backend.inFlight,
    max_concurrency: backend.maxConcurrency || null,
    weight: backend.weight,
    queued: dispatcher.queuedFor(backend),
    consecutive_failures: backend.health.consecutiveFailures,
    ejected_until: until === null ? null : new Date(until).toISOString(),
    last_error: backend.health.lastError,
    models: catalog.modelsOf(backend.name),
    recent: backend.recent.snapshot(),
  };
}

/** What the prober is built from. */
interface ProberParts {
  adapters: readonly Adapter[];
  config: RouterOptions["config"];
  clock: Clock;
  catalog: Catalog;
  dispatcher: Dispatcher;
  backends: ReadonlyMap<string, Backend>;
  log: Logger;
}

/**
 * Probes every backend every `routing.health.interval_seconds`; with probing off, only backends
 * that discover their models, every `discovery.interval_seconds`. A probe of a backend that never
 * answered ejects it at once when it fails; later failures count like failed requests.
 * A probe answered with a client error (e.g. no model list there) still shows the backend is up.
 */
function createProber(parts: ProberParts): Prober {
  const { config, catalog, dispatcher, backends, log } = parts;
  const probing = config.routing.health.intervalSeconds > 0;
  const intervalMs =
    (probing ? config.routing.health.intervalSeconds : config.discovery.intervalSeconds) * 1000;
  return new Prober({
    targets: parts.adapters.filter((a) => probing || catalog.discovers(a)),
    intervalMs,
    timeoutMs: Math.min(10_000, Math.max(2_000, intervalMs)),
    clock: parts.clock,
    onResult(adapter, result: ProbeResult) {
      const backend = backends.get(adapter.config.name)!;
      if (result.ok || !isBackendFailure(result.error)) {
        if (result.ok && catalog.discovers(adapter)) {
          catalog.discovered(backend.name, result.models);
        }
        dispatcher.success(backend);
        return;
      }
      if (backend.health.consecutiveFailures === 0) {
        log.warn("backend probe failed", {
          backend: backend.name,
          error: result.error.message,
        });
      }
      // A backend that never answered stays out until it does.
      dispatcher.failure(backend, result.error.message, !backend.health.answered);
    },
  });
}
