/**
 * Timeouts for the request path without a timer per request. Every request waits for something
 * with a bound (a backend's headers, the next chunk of a body), and almost every wait ends long
 * before its bound, so arming and clearing one runtime timer per wait is wasted work. Deadlines of
 * one duration are due in the order they were set, so each duration keeps a queue: setting one is
 * an append, cancelling one a flag, and a single timer per duration wakes up for the oldest.
 */

/** One pending deadline. */
export interface Deadline {
  /** Stops it from firing; harmless after it fired. */
  cancel(): void;
}

interface Entry extends Deadline {
  at: number;
  fire: (() => void) | null;
}

/** Clock and timer, injectable for tests. */
export interface DeadlineClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  /** Lets the process exit while the timer is pending. */
  unref?(id: unknown): void;
}

const systemClock: DeadlineClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  unref: (id) => Deno.unrefTimer(id as number),
};

/** The deadlines of one duration. */
class Lane {
  #entries: Entry[] = [];
  #head = 0;
  #cancelled = 0;
  #timer: unknown = null;

  constructor(readonly ms: number, readonly clock: DeadlineClock) {}

  add(fire: () => void): Deadline {
    const entry: Entry = {
      at: this.clock.now() + this.ms,
      fire,
      cancel: () => {
        if (entry.fire === null) return;
        entry.fire = null;
        this.#cancelled++;
        // Cancelled entries wait for their time unless they pile up. The timer stays armed (it is
        // unref'd, so it keeps no process alive): re-arming it per request would cost more.
        if (this.#cancelled > 64 && this.#cancelled * 2 > this.#entries.length - this.#head) {
          this.#compact();
        }
      },
    };
    this.#entries.push(entry);
    if (this.#timer === null) this.#arm(this.ms);
    return entry;
  }

  get pending(): number {
    return this.#entries.length - this.#head - this.#cancelled;
  }

  #wake(): void {
    this.#timer = null;
    const now = this.clock.now();
    while (this.#head < this.#entries.length) {
      const entry = this.#entries[this.#head];
      if (entry.fire !== null && entry.at > now) break;
      this.#head++;
      if (entry.fire === null) {
        this.#cancelled--;
        continue;
      }
      const fire = entry.fire;
      entry.fire = null;
      try {
        fire();
      } catch {
        // A deadline's action must not stop the others.
      }
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) this.#compact();
    const next = this.#entries[this.#head];
    if (next) this.#arm(Math.max(1, next.at - now));
  }

  #arm(ms: number): void {
    this.#timer = this.clock.setTimeout(() => this.#wake(), ms);
    this.clock.unref?.(this.#timer);
  }

  /** Drops cancelled and fired entries, keeping the order. */
  #compact(): void {
    this.#entries = this.#entries.slice(this.#head).filter((entry) => entry.fire !== null);
    this.#head = 0;
    this.#cancelled = 0;
  }
}

/** Deadlines of any duration; one timer per distinct duration while any is pending. */
export class Deadlines {
  #lanes = new Map<number, Lane>();

  constructor(readonly clock: DeadlineClock = systemClock) {}

  /** Calls `fire` once `ms` have passed, unless cancelled first. */
  after(ms: number, fire: () => void): Deadline {
    let lane = this.#lanes.get(ms);
    if (!lane) {
      lane = new Lane(ms, this.clock);
      this.#lanes.set(ms, lane);
    }
    return lane.add(fire);
  }

  /** Deadlines not yet fired or cancelled (for tests). */
  get pending(): number {
    let count = 0;
    for (const lane of this.#lanes.values()) count += lane.pending;
    return count;
  }
}

/** The process-wide deadlines of the request path. */
export const deadlines: Deadlines = new Deadlines();
