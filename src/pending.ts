/** Background writes still in flight (settlements, ledger records), awaited on shutdown. */
export class PendingWork {
  #inFlight = new Set<Promise<unknown>>();

  /** Tracks a promise until it settles; its failure is the caller's to log. */
  track<T>(promise: Promise<T>): Promise<T> {
    const tracked = promise.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
    tracked.catch(() => {});
    return promise;
  }

  /** How many writes are in flight. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Waits until nothing is in flight (new work started meanwhile is awaited too). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }
}
