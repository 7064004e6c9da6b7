/**
 * The abort signal of each request in flight: aborted when its client leaves, or for all of them
 * at once when the gateway stops waiting at shutdown. One controller and one listener per request
 * (a per-request `AbortSignal.any` costs about fifteen times as much, in WeakRefs the collector
 * has to clear).
 */
export class InFlight {
  #controllers = new Set<AbortController>();
  #stopped: unknown = undefined;
  #isStopped = false;

  /** Aborts every request in flight now and every one that starts later. */
  stopAll(reason: unknown): void {
    this.#isStopped = true;
    this.#stopped = reason;
    for (const controller of this.#controllers) controller.abort(reason);
  }

  /** A signal for one request; `release()` once the request is over. */
  open(client: AbortSignal): { signal: AbortSignal; release(): void } {
    const controller = new AbortController();
    if (this.#isStopped) controller.abort(this.#stopped);
    else if (client.aborted) controller.abort(client.reason);
    const onClientGone = () => controller.abort(client.reason);
    client.addEventListener("abort", onClientGone, { once: true });
    this.#controllers.add(controller);
    return {
      signal: controller.signal,
      release: () => {
        this.#controllers.delete(controller);
        client.removeEventListener("abort", onClientGone);
      },
    };
  }
}
