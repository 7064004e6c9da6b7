/** Per-backend in-flight counts and recent latency and errors, for the admin API and UI. */

const WINDOW = 200;

interface Entry {
  inFlight: number;
  /** Latencies (ms) and outcomes of the last WINDOW requests, as ring buffers. */
  latencies: number[];
  failed: boolean[];
  next: number;
}

/** What the admin API shows for one backend. */
export interface BackendSnapshot {
  in_flight: number;
  recent: { requests: number; errors: number; p50_ms: number | null; p95_ms: number | null };
}

/** Counts requests per backend; O(1) per request, bounded memory. */
export class BackendStats {
  #entries = new Map<string, Entry>();

  #entry(name: string): Entry {
    let entry = this.#entries.get(name);
    if (!entry) {
      entry = { inFlight: 0, latencies: [], failed: [], next: 0 };
      this.#entries.set(name, entry);
    }
    return entry;
  }

  /** A request was sent to `name`. */
  start(name: string): void {
    this.#entry(name).inFlight++;
  }

  /** A request to `name` ended. */
  end(name: string, latencyMs: number, failed: boolean): void {
    const entry = this.#entry(name);
    entry.inFlight = Math.max(0, entry.inFlight - 1);
    entry.latencies[entry.next] = latencyMs;
    entry.failed[entry.next] = failed;
    entry.next = (entry.next + 1) % WINDOW;
  }

  /** The current numbers of one backend. */
  snapshot(name: string): BackendSnapshot {
    const entry = this.#entries.get(name);
    if (!entry) {
      return { in_flight: 0, recent: { requests: 0, errors: 0, p50_ms: null, p95_ms: null } };
    }
    const sorted = [...entry.latencies].sort((a, b) => a - b);
    const at = (
      p: number,
    ) => (sorted.length
      ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))])
      : null);
    return {
      in_flight: entry.inFlight,
      recent: {
        requests: entry.latencies.length,
        errors: entry.failed.filter(Boolean).length,
        p50_ms: at(0.5),
        p95_ms: at(0.95),
      },
    };
  }
}
