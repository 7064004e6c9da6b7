/** Time for the router: injected so tests move it by hand instead of sleeping. */

/** A timer handle, opaque to the code that holds it. */
export type TimerId = unknown;

/** A clock with timers. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id as number),
};
