/**
 * Where requests wait for a backend slot: one queue per model, a timer and an abort listener per
 * waiter, and the hand-over of each freed slot to the best waiter that can use it.
 */
import { clientClosed, GatewayError } from "../errors.ts";
import type { Clock, TimerId } from "./clock.ts";
import { before, type Waiter, WaitQueue } from "./queue.ts";

/** What the room needs of a backend. */
export interface Slots {
  /** Requests holding a slot. */
  inFlight: number;
  hasRoom(): boolean;
  usable(): boolean;
}

/** The error for a request whose signal aborted: the gateway's reason, or the client left. */
export function abortError(signal: AbortSignal): GatewayError {
  return signal.reason instanceof GatewayError ? signal.reason : clientClosed(signal.reason);
}

/** Options of one wait. */
export interface WaitOptions<S> {
  model: string;
  candidates: readonly S[];
  /** Queue lane (0 high, 1 normal, 2 low). */
  rank: number;
  waitMs: number;
  signal: AbortSignal;
}

/** Every model's queue. */
export class WaitingRoom<S extends Slots> {
  #clock: Clock;
  #maxQueue: number;
  #queues = new Map<string, WaitQueue<S>>();
  #waiting = 0;
  #seq = 0;

  constructor(clock: Clock, maxQueue: number) {
    this.#clock = clock;
    this.#maxQueue = maxQueue;
  }

  /** Whether a model's queue has room for one more waiter. */
  canWait(model: string): boolean {
    return (this.#queues.get(model)?.size ?? 0) < this.#maxQueue;
  }

  /**
   * Waits for a slot of one of the candidates; the slot is taken on the waiter's behalf. Null when
   * the wait ended or a hand-over found no usable candidate left. Throws when the signal aborts.
   */
  wait(options: WaitOptions<S>): Promise<S | null> {
    const clock = this.#clock;
    const { signal } = options;
    const queue = this.#queue(options.model);
    return new Promise<S | null>((resolve, reject) => {
      let left = false;
      const leave = () => {
        if (left) return false;
        left = true;
        queue.remove(waiter);
        this.#waiting--;
        clock.clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        return true;
      };
      const waiter: Waiter<S> = {
        rank: options.rank,
        seq: this.#seq++,
        candidates: options.candidates,
        settle: (slot) => {
          if (!leave()) return false;
          resolve(slot);
          return true;
        },
      };
      const onAbort = () => {
        if (leave()) reject(abortError(signal));
      };
      queue.add(waiter);
      this.#waiting++;
      const timer: TimerId = clock.setTimeout(() => waiter.settle(null), options.waitMs);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Gives a backend's free slots to waiters: highest priority, then earliest, across models. */
  handOver(slots: S): void {
    while (this.#waiting > 0 && slots.hasRoom() && slots.usable()) {
      let best: Waiter<S> | undefined;
      for (const queue of this.#queues.values()) {
        const first = queue.size > 0 ? queue.firstFor(slots) : undefined;
        if (first && (!best || before(first, best))) best = first;
      }
      if (!best) return;
      slots.inFlight++;
      if (!best.settle(slots)) slots.inFlight--;
    }
  }

  /** Sends waiters whose candidates are all unusable now (ejected) on their way. */
  releaseStranded(): void {
    if (this.#waiting === 0) return;
    for (const queue of this.#queues.values()) {
      for (const waiter of queue.all()) {
        if (!waiter.candidates.some((c) => c.usable())) waiter.settle(null);
      }
    }
  }

  /** Waiting requests of one model. */
  size(model: string): number {
    return this.#queues.get(model)?.size ?? 0;
  }

  /** Waiting requests per model with a non-empty queue. */
  depths(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [model, queue] of this.#queues) if (queue.size > 0) out.set(model, queue.size);
    return out;
  }

  /** Waiting requests that could use a backend. */
  countFor(slots: S): number {
    if (this.#waiting === 0) return 0;
    let count = 0;
    for (const queue of this.#queues.values()) count += queue.countFor(slots);
    return count;
  }

  #queue(model: string): WaitQueue<S> {
    let queue = this.#queues.get(model);
    if (!queue) {
      queue = new WaitQueue();
      this.#queues.set(model, queue);
    }
    return queue;
  }
}
