/**
 * Sends the settlements no admission carried: a freed slot soon (`delayMs`), a debit alone
 * later, and a settlement Redis did not take again and again (backing off) until it answers.
 */
import type { Logger } from "../log.ts";
import type { Pending, SettleQueue } from "./settle_queue.ts";

/** Options for {@linkcode Settler}. */
export interface SettlerOptions {
  queue: SettleQueue;
  /** Sends one key's settlement. */
  send: (pending: Pending) => Promise<unknown>;
  log?: Logger;
}

const RETRY_MS = [100, 250, 500, 1000, 2000];

/** One timer for all pending settlements. */
export class Settler {
  #queue: SettleQueue;
  #send: (pending: Pending) => Promise<unknown>;
  #log?: Logger;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #at = Infinity;
  #failures = 0;
  #flushing: Promise<void> | null = null;
  #closed = false;

  constructor(options: SettlerOptions) {
    this.#queue = options.queue;
    this.#send = options.send;
    this.#log = options.log;
  }

  /** Makes sure what is pending is sent within `delayMs`. */
  within(delayMs: number): void {
    if (this.#closed) return;
    const at = Date.now() + delayMs;
    if (this.#timer !== null && this.#at <= at) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#at = Infinity;
      this.flush().catch(() => {});
    }, delayMs);
  }

  /** Sends every pending settlement now; what fails is kept and retried. */
  flush(): Promise<void> {
    this.#flushing ??= this.#sendAll().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Stops the timer after one last attempt to send what is pending. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#flushing;
    await this.flush();
  }

  async #sendAll(): Promise<void> {
    const pending = this.#queue.drain();
    if (pending.length === 0) return;
    const results = await Promise.allSettled(pending.map((p) => this.#send(p)));
    const failed = pending.filter((_, i) => results[i].status === "rejected");
    // A settlement that timed out may have been applied: its releases are idempotent, its debit
    // then counts twice, which errs on the strict side.
    for (const p of failed) this.#queue.restore(p);
    if (failed.length === 0) {
      this.#failures = 0;
      return;
    }
    if (this.#failures === 0) {
      this.#log?.warn("rate-limit settlement failed in redis; retrying", { keys: failed.length });
    }
    this.within(RETRY_MS[Math.min(this.#failures++, RETRY_MS.length - 1)]);
  }
}
