/** Requests waiting for a backend slot for one model: higher priority first, then arrival. */
import type { Priority } from "../config.ts";

/** Queue lane of each priority; lower is served first. */
export const PRIORITY_RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

/** One waiting request. */
export interface Waiter<S> {
  /** From {@linkcode PRIORITY_RANK}. */
  rank: number;
  /** Arrival order across all queues. */
  seq: number;
  /** The slots it may take. */
  candidates: readonly S[];
  /**
   * Ends the wait: with a slot already taken on its behalf, or null to move on. Returns false
   * when the waiter had already left (the caller then keeps the slot).
   */
  settle(slot: S | null): boolean;
}

/** One model's queue: a FIFO lane per priority. */
export class WaitQueue<S> {
  #lanes: Waiter<S>[][] = [[], [], []];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(waiter: Waiter<S>): void {
    this.#lanes[waiter.rank].push(waiter);
    this.#size++;
  }

  /** Removes a waiter (no-op when it already left). */
  remove(waiter: Waiter<S>): void {
    const lane = this.#lanes[waiter.rank];
    const index = lane.indexOf(waiter);
    if (index === -1) return;
    lane.splice(index, 1);
    this.#size--;
  }

  /** The first waiter, by priority then arrival, that can use `slot`. */
  firstFor(slot: S): Waiter<S> | undefined {
    for (const lane of this.#lanes) {
      for (const waiter of lane) if (waiter.candidates.includes(slot)) return waiter;
    }
    return undefined;
  }

  /** How many waiters could use `slot`. */
  countFor(slot: S): number {
    let count = 0;
    for (const lane of this.#lanes) {
      for (const waiter of lane) if (waiter.candidates.includes(slot)) count++;
    }
    return count;
  }

  /** Every waiter, in serving order (a copy: settling one while iterating is safe). */
  all(): Waiter<S>[] {
    return this.#lanes.flat();
  }
}

/** Whether `a` is served before `b`. */
export function before<S>(a: Waiter<S>, b: Waiter<S>): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.seq < b.seq);
}
