import { assert, assertEquals } from "../tests/assert.ts";
import { freePaidGroups } from "../tests/fixtures/free_paid.ts";
import { ConfigError, parseConfig } from "./config.ts";

const noEnv = () => undefined;

const FLEET = `
backends:
  - { name: local-a, type: vllm, base_url: "http://10.0.0.5:8000", models: [llama3.2], max_concurrency: 8 }
  - { name: local-b, type: vllm, base_url: "http://10.0.0.6:8000", models: [llama3.2] }
  - { name: cloud, type: openai, base_url: "https://api.openai.com/v1", models: [gpt-4o-mini] }
`;

function configError(yaml: string): string {
  try {
    parseConfig(yaml, noEnv);
  } catch (err) {
    assert(err instanceof ConfigError, String(err));
    return err.message;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("parseConfig() gives routing defaults when routing and groups are absent", () => {
  const config = parseConfig(FLEET, noEnv);
  assertEquals(config.routing, {
    strategy: "least_busy",
    retries: 2,
    queueTimeoutMs: 30_000,
    maxQueue: 1000,
    health: { intervalSeconds: 5, failuresToEject: 3, ejectSeconds: 10 },
  });
  assertEquals(config.groups, {});
  assertEquals(config.backends.map((b) => b.maxConcurrency), [8, 0, 0]);
  assertEquals(config.warnings, []);
});

Deno.test("parseConfig() reads the free/paid example of routing and groups", () => {
  const config = parseConfig(
    FLEET + `
routing:
  strategy: weighted
  retries: 1
  queue_timeout_ms: 5000
  max_queue: 10
  health: { interval_seconds: 2, failures_to_eject: 4, eject_seconds: 20 }
` + freePaidGroups(),
    noEnv,
  );
  assertEquals(config.routing.strategy, "weighted");
  assertEquals(config.routing.health.ejectSeconds, 20);
  assertEquals(config.groups.free, {
    priority: "low",
    backends: ["local-a", "local-b"],
    maxQueueMs: 60_000,
    models: { chat: "llama3.2" },
    fallbacks: {},
  });
  assertEquals(config.groups.paid.backends, null);
  assertEquals(config.groups.paid.maxQueueMs, 0);
  assertEquals(config.groups.paid.fallbacks, { "llama3.2": ["gpt-4o-mini"] });
});

Deno.test("parseConfig() refuses unknown group and routing settings, naming the place", () => {
  assertEquals(
    configError(FLEET + "groups:\n  free:\n    priorty: low\n"),
    'Invalid config at "groups.free.priorty": unknown setting (expected one of: priority, backends, max_queue_ms, models, fallbacks)',
  );
  assertEquals(
    configError(FLEET + "groups:\n  free:\n    priority: urgent\n"),
    'Invalid config at "groups.free.priority": expected one of: high, normal, low',
  );
  assertEquals(
    configError(FLEET + "routing:\n  strategy: round_robin\n"),
    'Invalid config at "routing.strategy": expected one of: least_busy, weighted',
  );
  assertEquals(
    configError(FLEET + "routing:\n  health:\n    interval: 5\n"),
    'Invalid config at "routing.health.interval": unknown setting (expected one of: interval_seconds, failures_to_eject, eject_seconds)',
  );
});

Deno.test("parseConfig() refuses negative numbers in routing, groups and backends", () => {
  assertEquals(
    configError(FLEET + "routing:\n  retries: -1\n"),
    'Invalid config at "routing.retries": expected a number from 0 to 10',
  );
  assertEquals(
    configError(FLEET + "routing:\n  max_queue: -5\n"),
    'Invalid config at "routing.max_queue": expected a number from 0 to 100000',
  );
  assertEquals(
    configError(FLEET + "routing:\n  health:\n    eject_seconds: -10\n"),
    'Invalid config at "routing.health.eject_seconds": expected a number from 1 to 300',
  );
  assertEquals(
    configError(FLEET + "groups:\n  free:\n    max_queue_ms: -1\n"),
    'Invalid config at "groups.free.max_queue_ms": expected a number from 0 to 3600000',
  );
  assertEquals(
    configError(
      "backends:\n  - { name: a, type: vllm, base_url: http://x, max_concurrency: -2 }\n",
    ),
    'Invalid config at "backends[0].max_concurrency": expected a number from 0 to 1000000',
  );
});

Deno.test("parseConfig() refuses a plain backend name nobody has; an empty glob is a warning", () => {
  assertEquals(
    configError(FLEET + "groups:\n  free:\n    backends: [local-a, gpu-9]\n"),
    'Invalid config at "groups.free.backends[1]": no backend is named "gpu-9"',
  );
  const config = parseConfig(
    FLEET + 'groups:\n  free:\n    backends: ["local-*", "gpu-*"]\n',
    noEnv,
  );
  assertEquals(config.groups.free.backends, ["local-a", "local-b"]);
  assertEquals(config.warnings, [
    'Config warning at "groups.free.backends[1]": "gpu-*" matches no backend',
  ]);
});

Deno.test("parseConfig() refuses fallback cycles, globally and per group", () => {
  assertEquals(
    configError(
      FLEET + "models:\n  llama3.2:\n    fallbacks: [gpt-4o-mini]\n  gpt-4o-mini:\n" +
        "    fallbacks: [llama3.2]\n",
    ),
    'Invalid config at "models.gpt-4o-mini.fallbacks": fallbacks form a cycle: llama3.2 -> gpt-4o-mini -> llama3.2',
  );
  assertEquals(
    configError(FLEET + "models:\n  llama3.2:\n    fallbacks: [llama3.2]\n"),
    'Invalid config at "models.llama3.2.fallbacks": fallbacks form a cycle: llama3.2 -> llama3.2',
  );
  // A group's own fallbacks replace the model's: no loop here, a loop through an alias below.
  const ok = parseConfig(
    FLEET + "models:\n  llama3.2:\n    fallbacks: [gpt-4o-mini]\n" +
      "groups:\n  paid:\n    fallbacks: { gpt-4o-mini: [fast] }\n",
    noEnv,
  );
  assertEquals(ok.groups.paid.fallbacks, { "gpt-4o-mini": ["fast"] });
  assertEquals(
    configError(
      FLEET + "models:\n  llama3.2:\n    fallbacks: [gpt-4o-mini]\n  fast:\n    aliases: [f]\n" +
        "groups:\n  paid:\n    fallbacks: { gpt-4o-mini: [f], fast: [llama3.2] }\n",
    ),
    'Invalid config at "groups.paid.fallbacks.fast": fallbacks form a cycle: llama3.2 -> gpt-4o-mini -> fast -> llama3.2',
  );
});

Deno.test("parseConfig() refuses a group alias to a model no backend of the group serves", () => {
  assertEquals(
    configError(
      FLEET + 'groups:\n  free:\n    backends: ["local-*"]\n    models: { chat: gpt-4o-mini }\n',
    ),
    'Invalid config at "groups.free.models.chat": "gpt-4o-mini" is not served by any backend this group may use',
  );
  // With a backend that discovers its models, the target cannot be known before start.
  const config = parseConfig(
    "backends:\n  - { name: a, type: ollama, base_url: http://x }\n" +
      "groups:\n  free:\n    models: { chat: anything }\n",
    noEnv,
  );
  assertEquals(config.groups.free.models, { chat: "anything" });
});
