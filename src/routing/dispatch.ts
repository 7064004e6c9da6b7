/**
 * Walks a plan before the first byte: takes a backend slot (or waits for one in the model's queue),
 * sends, counts failures toward ejection and moves on to another candidate, then to the next tier.
 */
import { GatewayError, noBackendAvailable } from "../errors.ts";
import type { Strategy } from "../config.ts";
import type { Backend } from "./backend.ts";
import type { Clock } from "./clock.ts";
import type { GroupPolicy, Tier } from "./policy.ts";
import { abortError, WaitingRoom } from "./waiting_room.ts";
import type { AttemptResult, Routed, RouteRequest, Target } from "./types.ts";

/** Options for {@linkcode Dispatcher}. */
export interface DispatchOptions {
  backends: ReadonlyMap<string, Backend>;
  strategy: Strategy;
  /** Further candidates tried per tier after a failure before the first byte. */
  retries: number;
  /** Waiting requests per model. */
  maxQueue: number;
  clock: Clock;
  random?: () => number;
  /** Called after every attempt. */
  onAttempt?: (backend: string, result: AttemptResult) => void;
  /** Called when a failure ejected a backend or a success readmitted it. */
  onHealth?: (backend: Backend, change: { ejectedMs: number } | { readmitted: true }) => void;
}

/** The outcome of one tier that did not answer: why it moved on. */
type TierEnd = { error: GatewayError };

/** Sends one attempt to a target. */
type Attempt<T> = (target: Target, signal: AbortSignal) => Promise<T>;

/** One request being routed. */
interface Job<T> {
  request: RouteRequest;
  group: GroupPolicy;
  attempt: Attempt<T>;
}

/** Whether an attempt's error is the backend's failure (retried, counted toward ejection). */
export function isBackendFailure(err: unknown): err is GatewayError {
  if (!(err instanceof GatewayError)) return false;
  return err.code === "upstream_error" || err.code === "upstream_timeout" ||
    (err.status === 429 && err.code === "rate_limit_exceeded");
}

function resultOf(err: unknown): AttemptResult {
  if (!(err instanceof GatewayError)) return "client_error";
  if (err.code === "upstream_timeout") return "upstream_timeout";
  if (err.code === "upstream_error") return "upstream_error";
  if (err.status === 429) return "rate_limited";
  if (err.status === 499 || err.code === "server_shutting_down") return "cancelled";
  return "client_error";
}

/** Slots, queues and attempts over a set of backends. */
export class Dispatcher {
  #options: DispatchOptions;
  #random: () => number;
  #room: WaitingRoom<Backend>;

  constructor(options: DispatchOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#room = new WaitingRoom(options.clock, options.maxQueue);
  }

  /** Routes one request through its tiers; throws the last tier's reason when none answered. */
  async route<T>(
    tiers: readonly Tier[],
    group: GroupPolicy,
    request: RouteRequest,
    attempt: Attempt<T>,
  ): Promise<Routed<T>> {
    const job: Job<T> = { request, group, attempt };
    let last: GatewayError | null = null;
    for (const tier of tiers) {
      const result = await this.#tier(tier, job);
      if ("error" in result) last = result.error;
      else return result;
    }
    throw last ?? noBackendAvailable(request.model);
  }

  /** Counts a failure of a backend (request or probe); `ejectNow` for one that never answered. */
  failure(backend: Backend, reason: string, ejectNow = false): void {
    const { ejectedMs } = backend.health.fail(reason, ejectNow);
    if (ejectedMs === null) return;
    this.#options.onHealth?.(backend, { ejectedMs });
    // Waiters left with no usable candidate move on at once.
    this.#room.releaseStranded();
  }

  /** Counts a success of a backend (request or probe); readmits it when ejected. */
  success(backend: Backend): void {
    if (!backend.health.succeed()) return;
    this.#options.onHealth?.(backend, { readmitted: true });
    this.#room.handOver(backend);
  }

  /** Waiting requests of one model. */
  queued(model: string): number {
    return this.#room.size(model);
  }

  /** Waiting requests per model with a non-empty queue. */
  depths(): Map<string, number> {
    return this.#room.depths();
  }

  /** Waiting requests that could use a backend. */
  queuedFor(backend: Backend): number {
    return this.#room.countFor(backend);
  }

  /** Up to 1 + retries attempts on the tier's candidates, waiting for a slot when all are full. */
  async #tier<T>(tier: Tier, job: Job<T>): Promise<Routed<T> | TierEnd> {
    const { request } = job;
    const deadline = this.#options.clock.now() + job.group.maxQueueMs;
    const tried = new Set<Backend>();
    let last: GatewayError | null = null;
    for (let n = 0; n <= this.#options.retries; n++) {
      if (request.signal.aborted) throw abortError(request.signal);
      const candidates = this.#candidates(tier, tried);
      if (candidates.length === 0) {
        return { error: last ?? this.#unavailable(request.model, tier) };
      }
      const backend = this.#take(candidates) ??
        await this.#wait(tier, candidates, job, deadline);
      if (!backend) return { error: last ?? noBackendAvailable(request.model) };
      job.request.progress.attempts++;
      const outcome = await this.#send(backend, tier, job);
      if (!("error" in outcome)) return outcome;
      tried.add(backend);
      last = outcome.error;
    }
    return { error: last ?? noBackendAvailable(request.model) };
  }

  /** Takes a free slot of one of the candidates, chosen by the strategy; null when all are full. */
  #take(candidates: readonly Backend[]): Backend | null {
    const free = this.#pick(candidates);
    if (free) free.inFlight++;
    return free;
  }

  /** Waits in the model's queue for a slot until `deadline`; null when none came in time. */
  async #wait(
    tier: Tier,
    candidates: readonly Backend[],
    job: Job<unknown>,
    deadline: number,
  ): Promise<Backend | null> {
    const { clock } = this.#options;
    const waitMs = deadline - clock.now();
    if (waitMs <= 0 || !this.#room.canWait(tier.model)) return null;
    const since = clock.now();
    try {
      return await this.#room.wait({
        model: tier.model,
        candidates,
        rank: job.group.rank,
        waitMs,
        signal: job.request.signal,
      });
    } finally {
      job.request.progress.queuedMs += clock.now() - since;
    }
  }

  /** One attempt on a slot already taken. Throws errors that are not the backend's failure. */
  async #send<T>(backend: Backend, tier: Tier, job: Job<T>): Promise<Routed<T> | TierEnd> {
    const { clock, onAttempt } = this.#options;
    const target: Target = {
      adapter: backend.adapter,
      model: tier.model,
      upstreamModel: tier.model,
    };
    const started = clock.now();
    let value: T;
    try {
      value = await job.attempt(target, job.request.signal);
    } catch (err) {
      onAttempt?.(backend.name, resultOf(err));
      const failed = isBackendFailure(err);
      if (failed) {
        // Counted before the slot is handed on, so an ejection keeps waiters off this backend.
        backend.recent.record(clock.now() - started, true);
        this.failure(backend, err.message);
      }
      this.#free(backend);
      // After the backend's first byte nothing is retried, though the failure still counts.
      if (!failed || err.afterFirstByte) throw err;
      return { error: err };
    }
    onAttempt?.(backend.name, "success");
    this.success(backend);
    let released = false;
    return {
      value,
      target,
      release: (end) => {
        if (released) return;
        released = true;
        backend.recent.record(end.latencyMs, end.failed);
        this.#free(backend);
      },
    };
  }

  #candidates(tier: Tier, tried: ReadonlySet<Backend>): Backend[] {
    const out: Backend[] = [];
    for (const name of tier.backends) {
      const backend = this.#options.backends.get(name);
      if (backend && !tried.has(backend) && backend.usable()) out.push(backend);
    }
    return out;
  }

  /** A free candidate by the strategy, or null when all are full. */
  #pick(candidates: readonly Backend[]): Backend | null {
    if (candidates.length === 1) return candidates[0].hasRoom() ? candidates[0] : null;
    const free = candidates.filter((b) => b.hasRoom());
    if (free.length <= 1) return free[0] ?? null;
    if (this.#options.strategy === "weighted") {
      const total = free.reduce((sum, b) => sum + b.weight, 0);
      let point = this.#random() * total;
      for (const b of free) {
        point -= b.weight;
        if (point < 0) return b;
      }
      return free[free.length - 1];
    }
    let best: Backend[] = [];
    let lowest = Infinity;
    for (const b of free) {
      const load = b.load();
      if (load < lowest) [best, lowest] = [[b], load];
      else if (load === lowest) best.push(b);
    }
    return best[Math.floor(this.#random() * best.length) % best.length];
  }

  /** 503 for a tier whose backends are all ejected: Retry-After until the first comes back. */
  #unavailable(model: string, tier: Tier): GatewayError {
    const now = this.#options.clock.now();
    let soonest = Infinity;
    for (const name of tier.backends) {
      const until = this.#options.backends.get(name)?.health.ejectedUntil;
      if (until) soonest = Math.min(soonest, until - now);
    }
    const seconds = Number.isFinite(soonest)
      ? Math.min(300, Math.max(1, Math.ceil(soonest / 1000)))
      : 1;
    return noBackendAvailable(model, seconds);
  }

  /** Frees a slot and hands it to the best waiter that can use it. */
  #free(backend: Backend): void {
    backend.inFlight = Math.max(0, backend.inFlight - 1);
    this.#room.handOver(backend);
  }
}
