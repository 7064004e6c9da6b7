import { assertEquals } from "../../tests/assert.ts";
import { backendConfig, configAdapter } from "../../tests/fakes/config_adapter.ts";
import { ManualClock } from "../../tests/fakes/manual_clock.ts";
import type { UpstreamModel } from "../../adapters/types.ts";
import { parseConfig } from "../config.ts";
import { GatewayError, upstreamError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { createRouter } from "./router.ts";

/** A router over backends whose model lists answer with whatever `answers[name]` holds. */
function setup(answers: Record<string, () => Promise<UpstreamModel[]>>, failuresToEject = 3) {
  const clock = new ManualClock();
  const config = parseConfig(
    `routing:\n  health: { interval_seconds: 5, failures_to_eject: ${failuresToEject}, eject_seconds: 10 }\n`,
    () => undefined,
  );
  const adapters = Object.keys(answers).map((name) =>
    configAdapter(backendConfig(name), () => answers[name]())
  );
  const router = createRouter({ adapters, config, log: silentLogger, clock });
  const state = (name: string) => router.snapshot().find((b) => b.name === name)!.state;
  /** Runs the next probe round (timers fire; the probes' promises settle). */
  const nextRound = async () => {
    clock.advance(5000);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { router, clock, state, nextRound, clockNow: () => clock.now() };
}

const listing = (): Promise<UpstreamModel[]> => Promise.resolve([{ id: "llama3.2" }]);
const refused = (): Promise<UpstreamModel[]> => Promise.reject(upstreamError("refused"));

Deno.test("createRouter() keeps a backend that never answered out until its first good probe", async () => {
  let dead = refused;
  const { router, state, nextRound, clockNow } = setup({ up: listing, dead: () => dead() }, 10);
  await router.start();
  assertEquals([state("up"), state("dead")], ["healthy", "ejected"]);
  assertEquals(router.ready(), true);
  // Its 10 s ejection runs out; the next failed probe ejects it again at once, not after 10.
  await nextRound();
  await nextRound();
  const view = router.snapshot().find((b) => b.name === "dead")!;
  assertEquals([view.state, view.consecutive_failures], ["ejected", 3]);
  assertEquals(Date.parse(view.ejected_until!), clockNow() + 20_000);
  dead = (): Promise<UpstreamModel[]> => Promise.resolve([{ id: "qwen3" }]);
  await nextRound();
  assertEquals(state("dead"), "healthy");
  assertEquals(router.list("default").map((m) => m.id), ["llama3.2", "qwen3"]);
  await router.stop();
});

Deno.test("createRouter(): a probe answered with a client error shows the backend is up", async () => {
  const notFound = () =>
    Promise.reject(
      new GatewayError("no model list here", { status: 404, type: "invalid_request_error" }),
    );
  const { router, state } = setup({ plain: notFound });
  await router.start();
  assertEquals(state("plain"), "healthy");
  assertEquals(router.ready(), true);
  await router.stop();
});

Deno.test("createRouter(): probes that fail count like failed requests once a backend answered", async () => {
  let answer = listing;
  const { router, state, nextRound } = setup({ a: () => answer() });
  await router.start();
  answer = refused;
  await nextRound();
  await nextRound();
  assertEquals([state("a"), router.snapshot()[0].consecutive_failures], ["healthy", 2]);
  await nextRound();
  assertEquals(state("a"), "ejected");
  assertEquals(router.ready(), false);
  await router.stop();
});

Deno.test("createRouter().plan() names the canonical model after the group's aliases, with no tiers when nothing serves it", () => {
  const config = parseConfig(
    `backends:
  - { name: a, type: vllm, base_url: "http://a:8000", models: [llama3.2] }
  - { name: b, type: vllm, base_url: "http://b:8000", models: [qwen3] }
models:
  llama3.2: { aliases: [default], fallbacks: [qwen3] }
groups:
  free: { backends: [a], models: { chat: default } }
`,
    () => undefined,
  );
  const adapters = config.backends.map((c) => configAdapter(c));
  const router = createRouter({ adapters, config, log: silentLogger, clock: new ManualClock() });
  const tiers = (plan: { tiers: readonly { model: string; backends: readonly string[] }[] }) =>
    plan.tiers.map((t) => `${t.model}@${t.backends.join("+")}`);
  const free = router.plan("chat", "free");
  assertEquals([free.model, free.group.name, tiers(free)], ["llama3.2", "free", ["llama3.2@a"]]);
  const other = router.plan("default", "default");
  assertEquals([other.model, tiers(other)], ["llama3.2", ["llama3.2@a", "qwen3@b"]]);
  const chat = router.plan("chat", "default");
  assertEquals([chat.model, tiers(chat)], ["chat", []], "another group's alias is not this one's");
  const unknown = router.plan("no-such-model", "free");
  assertEquals([unknown.model, tiers(unknown)], ["no-such-model", []]);
});
