/** Lets a repeated log line through at most once per interval, counting what it held back. */
export class LogGate {
  #intervalMs: number;
  #now: () => number;
  #last = -Infinity;
  #held = 0;

  constructor(intervalMs: number, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /**
   * Whether to log now; `run` receives how many occurrences were held back since the last line
   * (including this one).
   */
  pass(run: (occurrences: number) => void): void {
    this.#held++;
    const now = this.#now();
    if (now - this.#last < this.#intervalMs) return;
    this.#last = now;
    const occurrences = this.#held;
    this.#held = 0;
    run(occurrences);
  }
}
