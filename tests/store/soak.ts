/**
 * The mixed accounting soak, at any size. Keys with quotas, daily budgets and rate limits (on
 * Redis) send chat, Responses and Ollama requests, streamed and not; clients leave mid-stream, a
 * backend dies mid-stream, another refuses connections (failover), Redis restarts empty. Three
 * gateways share one KV file: two instances in this process (one KV handle, as instances share a
 * remote KV) and one process of its own, killed with SIGKILL while streams are open on it. Once
 * traffic stops the accounting invariant must hold, with exactly README's crash bound for the
 * killed process: "at most the last 100 ms of records plus those of requests still in flight".
 *
 * A local KV file takes checked writes from one process at a time (Deno KV answers "database is
 * locked" otherwise; README: "a local KV file is single-process"), so the process serves while
 * the in-process instances hold no lease, and they serve again once it is dead.
 */
import { type FakeOllama, startFakeOllama } from "../fakes/ollama_backend.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../fakes/openai_backend.ts";
import { type FleetBackend, startFleetBackend } from "../fakes/fleet_backend.ts";
import { type GatewayProcess, startGatewayProcess } from "../fakes/gateway_process.ts";
import { startRedis, type TestRedis } from "../fakes/redis_server.ts";
import { startTestGateway, type TestGateway, waitFor } from "../helpers.ts";
import { heldLeases } from "./books.ts";
import { type AccountingReport, checkAccounting, type KeyExpectation } from "./invariant.ts";
import { type Answer, callerOf, type HeldStream, hold, KINDS, send } from "./soak_traffic.ts";

/** How big one soak run is. */
export interface SoakSize {
  keys: number;
  /** Rounds on the in-process pair before the kill, on the process, and after the kill. */
  rounds: { pair: number; process: number; after: number };
  /** Streams open on the process when it is killed. */
  inFlight: number;
  /** Requests sent at once. */
  concurrency: number;
}

/** What a soak run sent and what the invariant found. */
export interface SoakResult {
  report: AccountingReport;
  sent: number;
  /** Answers by status and code: "200", "429 insufficient_quota", ... */
  answers: Record<string, number>;
  /** Streams open on the process when it was killed (their records may be lost). */
  inFlightAtKill: number;
  /** Rate-limit checks the in-process instances made while Redis was down. */
  redisFailures: number;
  seconds: number;
}

/** README: records are written every 100 ms; the process is quiet ten times that before the kill. */
const QUIET_BEFORE_KILL_MS = 1000;

interface SoakKey extends KeyExpectation {
  id: string;
  key: string;
  recorded: string[];
  /** No budget a stream longer than its reservation could overrun. */
  roomy: boolean;
}

interface Backends {
  vllm: FakeOpenAi;
  ollama: FakeOllama;
  flaky: FleetBackend;
  spare: FleetBackend;
}

/** Runs the soak, then checks the invariant (which throws when it does not hold). */
export async function runAccountingSoak(
  size: SoakSize,
  log: (line: string) => void = () => {},
): Promise<SoakResult> {
  const started = Date.now();
  const dir = await Deno.makeTempDir({ prefix: "modelgate-soak-" });
  const kv = await Deno.openKv(`${dir}/modelgate.kv`);
  const redis = await startRedis();
  const backends: Backends = {
    vllm: await startFakeOpenAi({
      models: ["gpt-test", "slow-stream", "die-midstream", "embed-test"],
    }),
    ollama: await startFakeOllama(),
    flaky: startFleetBackend({ name: "flaky", models: ["llama3.2"] }),
    spare: startFleetBackend({ name: "spare", models: ["llama3.2"] }),
  };
  const pair: TestGateway[] = [];
  let doomed: GatewayProcess | null = null;
  try {
    const yaml = configOf(redis, backends);
    for (let i = 0; i < 2; i++) pair.push(await startTestGateway(yaml, { kv }));
    const run = new SoakRun(size, pair, redis, backends, log);
    await run.createKeys();
    doomed = await startGatewayProcess(yaml, { kv: `${dir}/modelgate.kv` });
    const inFlightAtKill = await run.traffic(kv, doomed);
    const report = await checkAccounting({ admin: pair[0].admin, kv }, {
      keys: Object.fromEntries(run.keys.map((k) => [k.id, k])),
      backends: {
        vllm: {
          answered: backends.vllm.requests.filter((r) => r.method === "POST").length,
          mayBeLost: inFlightAtKill,
        },
        ollama: { answered: backends.ollama.requests.filter((r) => r.method === "POST").length },
        flaky: { answered: backends.flaky.received.length },
        spare: { answered: backends.spare.received.length },
      },
      timeoutMs: 30_000,
    });
    const redisFailures = pair.reduce(
      (sum, g) =>
        sum + g.metrics.value("modelgate_ratelimit_redis_failures_total", { mode: "local" }),
      0,
    );
    const seconds = (Date.now() - started) / 1000;
    return { report, sent: run.sent, answers: run.answers, inFlightAtKill, redisFailures, seconds };
  } finally {
    for (const gateway of pair) await gateway.shutdown();
    if (doomed?.alive()) await doomed.stop("SIGKILL");
    for (const backend of Object.values(backends)) await backend.close();
    await redis.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function configOf(redis: TestRedis, b: Backends): string {
  return `
redis:
  url: ${redis.url}
quota:
  lease_ttl_seconds: 3
discovery:
  interval_seconds: 0
routing:
  health:
    interval_seconds: 0
backends:
  - { name: vllm, type: vllm, base_url: "${b.vllm.url}", models: [gpt-test, slow-stream, die-midstream, embed-test] }
  - { name: ollama, type: ollama, base_url: "${b.ollama.url}", models: ["llama3.2:1b"] }
  - { name: flaky, type: vllm, base_url: "${b.flaky.url}", models: [llama3.2] }
  - { name: spare, type: vllm, base_url: "${b.spare.url}", models: [llama3.2] }
`;
}

/** Limits of the i-th key: tight and roomy budgets, rate limits or none. */
function limitsOf(i: number): Record<string, unknown> {
  return {
    name: `soak-${i}`,
    quota_tokens: i % 4 === 0 ? 120 : 1_000_000,
    daily_tokens: i % 6 === 1 ? 200 : null,
    daily_requests: i % 6 === 2 ? 5 : null,
    rpm: i % 3 === 0 ? 600 : null,
    burst: i % 3 === 0 ? 4 : null,
    tpm: i % 5 === 1 ? 100_000 : null,
    max_concurrency: i % 5 === 3 ? 2 : null,
  };
}

/** A held stream and the key it belongs to. */
interface Held extends HeldStream {
  key: SoakKey;
}

/** One run's keys, traffic and tallies. */
class SoakRun {
  keys: SoakKey[] = [];
  sent = 0;
  answers: Record<string, number> = {};

  constructor(
    readonly size: SoakSize,
    readonly pair: TestGateway[],
    readonly redis: TestRedis,
    readonly backends: Backends,
    readonly log: (line: string) => void,
  ) {}

  /** Sends everything, killing the process on the way; returns the streams open at the kill. */
  async traffic(kv: Deno.Kv, doomed: GatewayProcess): Promise<number> {
    const { pair, process, after } = this.size.rounds;
    const urls = this.pair.map((gateway) => gateway.url);
    await this.known(doomed.url);
    let round = 0;
    for (; round < pair; round++) {
      if (round === Math.floor(pair / 3)) await this.backends.flaky.refuse();
      await this.round(round, urls, round === Math.floor(pair / 2));
      if (round === Math.floor((2 * pair) / 3)) this.backends.flaky.restore();
    }
    // The process serves alone: the pair first gives back its leases (after 1 s without requests).
    const ids = this.keys.map((k) => k.id);
    await waitFor(async () => (await heldLeases(kv, ids, Date.now())).length === 0, 20_000);
    for (; round < pair + process; round++) await this.round(round, [doomed.url], false);
    const dying = await this.hold(doomed.url, this.keys, this.size.inFlight);
    await new Promise((resolve) => setTimeout(resolve, QUIET_BEFORE_KILL_MS));
    this.log(`soak: killing the gateway process with ${dying.length} streams open on it`);
    await doomed.stop("SIGKILL");
    await Promise.all(dying.map((held) => held.ended));
    for (const { key } of dying) key.mayBeLost = (key.mayBeLost ?? 0) + 1;
    // The pair serves again, while the dead process's leases still count until they expire.
    const roomy = this.keys.filter((k) => k.roomy);
    const lasting = await this.hold(urls[0], roomy, Math.ceil(this.size.inFlight / 2));
    for (; round < pair + process + after; round++) await this.round(round, urls, false);
    for (const held of lasting) {
      held.stop();
      held.key.recorded.push(held.requestId);
    }
    await Promise.all(lasting.map((held) => held.ended));
    return dying.length;
  }

  async createKeys(): Promise<void> {
    for (let i = 0; i < this.size.keys; i++) {
      const limits = limitsOf(i);
      const { key, id } = await this.pair[0].createKey(limits);
      const roomy = limits.quota_tokens === 1_000_000 && limits.daily_tokens === null;
      // Only roomy keys hold long streams: the others never use more than they reserve.
      this.keys.push({ id, key, roomy, answered: 0, recorded: [], overrun: roomy ? undefined : 0 });
    }
    for (const gateway of this.pair) await this.known(gateway.url);
  }

  /** Waits until the instance at `url` knows the last key (instances learn within a second). */
  async known(url: string): Promise<void> {
    const last = this.keys.at(-1)!.key;
    await waitFor(async () => {
      const response = await fetch(`${url}/v1/models`, {
        headers: { authorization: `Bearer ${last}` },
      });
      await response.body?.cancel();
      return response.ok;
    }, 20_000);
  }

  /** Every key sends one request to one of `urls`; Redis may be down for half of the round. */
  async round(round: number, urls: string[], restartRedis: boolean): Promise<void> {
    const half = Promise.withResolvers<void>();
    const restart = restartRedis
      ? this.redis.stop().then(() => half.promise).then(() => this.redis.start())
      : null;
    let next = 0;
    let done = 0;
    const lane = async () => {
      while (next < this.keys.length) {
        const i = next++;
        const kind = KINDS[(i + round * 3) % KINDS.length];
        const url = urls[(i + round) % urls.length];
        const requestId = `${kind}.r${round}.k${i}`;
        this.note(this.keys[i], await send(kind, callerOf(url, this.keys[i].key, requestId)), {
          requestId,
        });
        if (++done >= this.keys.length / 2) half.resolve();
      }
    };
    await Promise.all(Array.from({ length: this.size.concurrency }, lane));
    half.resolve();
    await restart;
    this.log(`soak: round ${round + 1} done, ${this.sent} requests sent`);
  }

  /** Opens up to `count` endless streams on the instance at `url`, one per key, in order. */
  async hold(url: string, keys: SoakKey[], count: number): Promise<Held[]> {
    const held: Held[] = [];
    for (const key of keys) {
      if (held.length === count) break;
      const requestId = `held.${url.split(":").at(-1)}.${key.id}`;
      const opened = await hold(callerOf(url, key.key, requestId));
      // An open stream is recorded when it ends, unless its instance dies first.
      this.note(key, opened.answer, opened.held ? {} : { requestId });
      if (opened.held) held.push({ key, ...opened.held });
    }
    return held;
  }

  /** Counts an answer; an admitted request given a `requestId` must end up with a record. */
  note(key: SoakKey, answer: Answer, tag: { requestId?: string }): void {
    this.sent++;
    const label = [answer.status ?? "no answer", answer.code].filter(Boolean).join(" ");
    this.answers[label] = (this.answers[label] ?? 0) + 1;
    // Admitted (past auth, limits and quota): served, or failed by the backends afterwards.
    if (answer.status === null || !(answer.status < 400 || answer.status >= 502)) return;
    key.answered++;
    if (tag.requestId) key.recorded.push(tag.requestId);
  }
}
