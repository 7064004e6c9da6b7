/**
 * Outlier detection for one backend, as Envoy does it: consecutive failures eject it for a time
 * that doubles on each repeat (up to a cap); a success readmits it. When an ejection runs out the
 * backend gets traffic again, but its failure count stays, so one more failure ejects it again.
 */
import type { BackendState } from "./types.ts";

/** Longest ejection; also how long a backend must stay out of trouble to start again at the base. */
export const MAX_EJECT_MS = 300_000;

/** Options for {@linkcode Health}. */
export interface HealthOptions {
  failuresToEject: number;
  /** The first ejection, in ms. */
  ejectMs: number;
  now: () => number;
}

/** What a recorded failure did. */
export interface FailureEffect {
  /** This failure ejected the backend; for how long, in ms. */
  ejectedMs: number | null;
}

/** The health of one backend. */
export class Health {
  #options: HealthOptions;
  #failures = 0;
  #ejectedUntil: number | null = null;
  /** Ejections in a row, for the doubling; forgotten after MAX_EJECT_MS without one. */
  #repeats = 0;
  #lastEjectionEnd = -Infinity;
  #lastError: string | null = null;
  #answered = false;

  constructor(options: HealthOptions) {
    this.#options = options;
  }

  /** Consecutive failures since the last success. */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** When the current ejection ends (ms), or null when the backend is not ejected. */
  get ejectedUntil(): number | null {
    return this.isEjected() ? this.#ejectedUntil : null;
  }

  /** Whether the backend ever succeeded (a probe or a request). */
  get answered(): boolean {
    return this.#answered;
  }

  /** Why the last failure happened. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Whether the backend is out of rotation right now. */
  isEjected(): boolean {
    return this.#ejectedUntil !== null && this.#options.now() < this.#ejectedUntil;
  }

  /** `healthy` or `ejected`. */
  get state(): BackendState {
    return this.isEjected() ? "ejected" : "healthy";
  }

  /**
   * Counts a failure (a request before its first byte, or a probe). `ejectNow` ejects at once,
   * for a backend that never answered. Failures while ejected do not lengthen the ejection.
   */
  fail(reason: string, ejectNow = false): FailureEffect {
    this.#failures = Math.min(this.#failures + 1, 1_000_000);
    this.#lastError = reason;
    if (this.isEjected()) return { ejectedMs: null };
    if (!ejectNow && this.#failures < this.#options.failuresToEject) return { ejectedMs: null };
    const now = this.#options.now();
    if (now - this.#lastEjectionEnd >= MAX_EJECT_MS) this.#repeats = 0;
    const ms = Math.min(this.#options.ejectMs * 2 ** this.#repeats, MAX_EJECT_MS);
    this.#repeats = Math.min(this.#repeats + 1, 30);
    this.#ejectedUntil = now + ms;
    this.#lastEjectionEnd = this.#ejectedUntil;
    return { ejectedMs: ms };
  }

  /** Counts a success; returns true when it readmitted an ejected backend. */
  succeed(): boolean {
    const wasEjected = this.isEjected();
    this.#answered = true;
    this.#failures = 0;
    if (wasEjected) this.#lastEjectionEnd = this.#options.now();
    this.#ejectedUntil = null;
    return wasEjected;
  }
}
