/**
 * Active probes: every backend's model list is asked for on a timer, off the request path. The
 * answer feeds discovery; reaching it or not feeds health. Rounds never overlap.
 */
import type { Adapter, UpstreamModel } from "../../adapters/types.ts";
import { upstreamTimeout } from "../errors.ts";
import type { Clock, TimerId } from "./clock.ts";

/** What one probe of one backend found. */
export type ProbeResult = { ok: true; models: UpstreamModel[] } | { ok: false; error: unknown };

/** Options for {@linkcode Prober}. */
export interface ProberOptions {
  /** Backends to probe, every round. */
  targets: readonly Adapter[];
  /** Time between the end of a round and the next; 0 = only the first round. */
  intervalMs: number;
  /** Longest wait for one backend's answer. */
  timeoutMs: number;
  clock: Clock;
  onResult: (adapter: Adapter, result: ProbeResult) => void;
}

/** Runs probe rounds until stopped. */
export class Prober {
  #options: ProberOptions;
  #timer: TimerId | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #controllers = new Set<AbortController>();

  constructor(options: ProberOptions) {
    this.#options = options;
  }

  /** Runs the first round, then schedules the next ones. */
  async start(): Promise<void> {
    await this.#runRound();
    this.#schedule();
  }

  /** Stops the timer and aborts probes in flight; resolves when they have ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = null;
    for (const controller of this.#controllers) controller.abort();
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped || this.#options.intervalMs <= 0) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = null;
      this.#runRound().then(() => this.#schedule());
    }, this.#options.intervalMs);
  }

  /** Probes every target once now (a round already running is awaited instead). */
  #runRound(): Promise<void> {
    this.#running ??= this.#probeAll().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #probeAll(): Promise<void> {
    await Promise.all(this.#options.targets.map(async (adapter) => {
      const result = await this.#probe(adapter);
      if (!this.#stopped) this.#options.onResult(adapter, result);
    }));
  }

  async #probe(adapter: Adapter): Promise<ProbeResult> {
    const { clock, timeoutMs } = this.#options;
    const controller = new AbortController();
    this.#controllers.add(controller);
    const timer = clock.setTimeout(
      () =>
        controller.abort(
          upstreamTimeout(
            `Backend "${adapter.config.name}" did not answer its health probe in time`,
          ),
        ),
      timeoutMs,
    );
    try {
      return { ok: true, models: await adapter.listModels(controller.signal) };
    } catch (error) {
      return { ok: false, error };
    } finally {
      clock.clearTimeout(timer);
      this.#controllers.delete(controller);
    }
  }
}
