import { assertEquals } from "../../tests/assert.ts";
import { configAdapter } from "../../tests/fakes/config_adapter.ts";
import { parseConfig } from "../config.ts";
import { Catalog } from "./catalog.ts";
import { Policy } from "./policy.ts";

const YAML = `
backends:
  - { name: local-a, type: vllm, base_url: "http://a:8000", models: [llama3.2, qwen3] }
  - { name: local-b, type: vllm, base_url: "http://b:8000", models: [llama3.2] }
  - { name: cloud, type: openai, base_url: "https://api.openai.com/v1", models: [gpt-4o-mini, gpt-4o] }
  - { name: lab, type: ollama, base_url: "http://lab:11434" }
models:
  llama3.2:
    aliases: [default]
    fallbacks: [qwen3]
  qwen3:
    fallbacks: [mini]
  gpt-4o-mini:
    aliases: [mini]
groups:
  free: { priority: low, backends: ["local-*"], max_queue_ms: 60000, models: { chat: llama3.2 } }
  paid: { priority: high, max_queue_ms: 0, models: { chat: default }, fallbacks: { llama3.2: [gpt-4o] } }
`;

/** Adapters that only carry their config: the catalog and policy never call a backend. */
function setup() {
  const config = parseConfig(YAML, () => undefined);
  const adapters = config.backends.map((c) => configAdapter(c));
  const catalog = new Catalog({ adapters, models: config.models, now: () => 1_700_000_000_000 });
  const policy = new Policy({
    catalog,
    groups: config.groups,
    models: config.models,
    queueTimeoutMs: config.routing.queueTimeoutMs,
  });
  return { catalog, policy };
}

Deno.test("Policy.canonical() applies the group's aliases, then the global ones", () => {
  const { policy } = setup();
  assertEquals(policy.canonical("chat", "free"), "llama3.2");
  assertEquals(policy.canonical("chat", "paid"), "llama3.2", "paid's chat -> default -> llama3.2");
  assertEquals(policy.canonical("chat", "other"), "chat", "groups do not share aliases");
  assertEquals(policy.canonical("mini", "other"), "gpt-4o-mini");
  assertEquals(policy.canonical("nothing-like-it", "free"), "nothing-like-it");
});

Deno.test("Policy.plan() gives tiers of the model then its fallbacks, depth-first, per group", () => {
  const { policy } = setup();
  const tiers = (model: string, group: string) =>
    policy.plan(model, policy.group(group)).map((t) => `${t.model}@${t.backends.join("+")}`);
  // Default group: llama3.2 -> qwen3 -> mini (alias of gpt-4o-mini).
  assertEquals(tiers("llama3.2", "default"), [
    "llama3.2@local-a+local-b",
    "qwen3@local-a",
    "gpt-4o-mini@cloud",
  ]);
  // free may use local-* only: the cloud tier disappears.
  assertEquals(tiers("llama3.2", "free"), ["llama3.2@local-a+local-b", "qwen3@local-a"]);
  // paid's own fallbacks replace the model's.
  assertEquals(tiers("llama3.2", "paid"), ["llama3.2@local-a+local-b", "gpt-4o@cloud"]);
  assertEquals(tiers("gpt-4o", "free"), [], "a model only the cloud serves is not there for free");
  assertEquals(tiers("unknown", "default"), []);
});

Deno.test("Policy.group() fills defaults for groups not in the config", () => {
  const { policy } = setup();
  assertEquals(policy.group("free").rank, 2);
  assertEquals(policy.group("paid").rank, 0);
  assertEquals(policy.group("paid").maxQueueMs, 0);
  const other = policy.group("someone");
  assertEquals(other, policy.group("someone-else"), "unlisted groups share the defaults");
  assertEquals([other.rank, other.maxQueueMs, other.allowed], [1, 30_000, null]);
});

Deno.test("Policy.list() shows what the group can reach, its aliases included", () => {
  const { policy } = setup();
  const ids = (group: string) => policy.list(group).map((m) => m.id);
  assertEquals(ids("free"), ["chat", "default", "llama3.2", "qwen3"]);
  assertEquals(ids("paid"), [
    "chat",
    "default",
    "gpt-4o",
    "gpt-4o-mini",
    "llama3.2",
    "mini",
    "qwen3",
  ]);
  assertEquals(policy.list("free").find((m) => m.id === "chat")?.owned_by, "local-a");
});

Deno.test("Catalog takes discovered lists and plans follow them", () => {
  const { catalog, policy } = setup();
  assertEquals(policy.plan("phi4", policy.group("default")), []);
  catalog.discovered("lab", [{ id: "phi4", created: 1 }, { id: "llama3.2" }]);
  assertEquals(policy.plan("phi4", policy.group("default")).map((t) => t.backends), [["lab"]]);
  assertEquals(catalog.servers("llama3.2").map((s) => s.backend), ["local-a", "local-b", "lab"]);
  assertEquals(catalog.modelsOf("lab"), ["llama3.2", "phi4"]);
  const version = catalog.version;
  catalog.discovered("lab", [{ id: "phi4", created: 1 }, {
    id: "llama3.2",
    created: 1_700_000_000,
  }]);
  assertEquals(catalog.version, version, "an unchanged list does not rebuild");
});
