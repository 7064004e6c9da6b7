/** Recent latency and errors of one backend, for the admin API and UI. */

const WINDOW = 200;

/** What the admin API shows of a backend's recent requests. */
export interface RecentSnapshot {
  requests: number;
  errors: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

/** The last 200 requests of one backend as ring buffers: O(1) per request, bounded memory. */
export class RecentStats {
  #latencies: number[] = [];
  #failed: boolean[] = [];
  #next = 0;

  /** A request (or failed attempt) to this backend ended. */
  record(latencyMs: number, failed: boolean): void {
    this.#latencies[this.#next] = Math.max(0, latencyMs);
    this.#failed[this.#next] = failed;
    this.#next = (this.#next + 1) % WINDOW;
  }

  /** The current numbers. */
  snapshot(): RecentSnapshot {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const at = (p: number) =>
      sorted.length
        ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))])
        : null;
    return {
      requests: sorted.length,
      errors: this.#failed.filter(Boolean).length,
      p50_ms: at(0.5),
      p95_ms: at(0.95),
    };
  }
}
