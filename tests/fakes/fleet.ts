/** A gateway in front of several fleet backends, for the routing tests. */
import type OpenAI from "openai";
import { type FleetBackend, startFleetBackend } from "./fleet_backend.ts";
import {
  ADMIN_KEY,
  startTestGateway,
  type TestGateway,
  type TestGatewayOptions,
} from "../helpers.ts";

/** Backends by name and the gateway in front of them. */
export interface Fleet {
  gateway: TestGateway;
  backends: Record<string, FleetBackend>;
  /** An SDK client of a new key in `group` (no group: the default group). */
  client(fields?: Record<string, unknown>): Promise<OpenAI>;
  /** One backend as GET /admin/api/backends shows it. */
  view(name: string): Promise<Record<string, unknown>>;
  /** The text of /metrics. */
  metrics(): Promise<string>;
}

/** Backend specs: name -> models it serves. */
export type FleetSpec = Record<string, string[]>;

/**
 * Starts one fleet backend per spec entry, then a gateway from `yaml(backends)`, runs `fn`, and
 * stops everything whatever happens.
 */
export async function withFleet(
  spec: FleetSpec,
  yaml: (backends: Record<string, FleetBackend>) => string,
  fn: (fleet: Fleet) => Promise<void>,
  options: TestGatewayOptions = {},
): Promise<void> {
  const backends: Record<string, FleetBackend> = {};
  for (const [name, models] of Object.entries(spec)) {
    backends[name] = startFleetBackend({ name, models });
  }
  let gateway: TestGateway | null = null;
  try {
    gateway = await startTestGateway(yaml(backends), { random: () => 0, ...options });
    const started = gateway;
    await fn({
      gateway: started,
      backends,
      async client(fields = {}) {
        const { key } = await started.createKey({ name: "fleet-test", ...fields });
        return started.client(key);
      },
      async metrics() {
        const headers = { authorization: `Bearer ${ADMIN_KEY}` };
        return await (await fetch(`${started.url}/metrics`, { headers })).text();
      },
      async view(name) {
        const list = (await (await started.admin("GET", "/backends")).json()).data;
        return list.find((b: { name: string }) => b.name === name);
      },
    });
  } finally {
    await gateway?.shutdown();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  }
}

/** One chat request through the SDK, tagged in `user` so the backend records who it was. */
export function ask(client: OpenAI, model: string, tag?: string) {
  return client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "hi" }],
    user: tag,
  });
}

/** A `backends:` entry for a fleet backend. */
export function entry(backend: FleetBackend, extra: Record<string, unknown> = {}): string {
  const fields = {
    name: backend.name,
    type: "vllm",
    base_url: backend.url,
    models: backend.models,
    ...extra,
  };
  return `  - ${JSON.stringify(fields)}\n`;
}
