/**
 * Sends the script calls issued during one turn of the event loop as one pipeline: one socket
 * write and one timer for all of them. Requests arrive in separate tasks, so ioredis'
 * auto-pipelining (one microtask) rarely groups them; a socket write through Node's stream layer
 * costs more than the script call it carries.
 */
import type { Redis } from "ioredis";
import { setImmediate } from "node:timers";

interface Call {
  command: string;
  args: string[];
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

type Pipeline =
  & { exec(): Promise<[Error | null, unknown][] | null> }
  & Record<
    string,
    (...args: string[]) => unknown
  >;

/** Options for {@linkcode CommandBatcher}. */
export interface BatcherOptions {
  timeoutMs: number;
  /** Pipelines sent and not answered at most; beyond, calls fail at once. */
  maxInFlight?: number;
  /** Runs just before a pipeline is built, to add the calls gathered for it (via `call`). */
  prepare?: () => void;
}

/** One pipeline per event-loop turn, answered or failed within `timeoutMs`. */
export class CommandBatcher {
  #client: Redis;
  #timeoutMs: number;
  #maxInFlight: number;
  #prepare: () => void;
  #calls: Call[] = [];
  #scheduled = false;
  #inFlight = 0;

  constructor(client: Redis, options: BatcherOptions) {
    this.#client = client;
    this.#timeoutMs = options.timeoutMs;
    this.#maxInFlight = options.maxInFlight ?? 64;
    this.#prepare = options.prepare ?? (() => {});
  }

  /** Makes sure a pipeline is sent at the end of this turn. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // After the callbacks of this turn's I/O (other requests arriving), without a timer's delay.
    setImmediate(() => this.#send());
  }

  /** Queues one call (a command defined on the client) for the current turn's pipeline. */
  call<T>(command: string, args: string[]): Promise<T> {
    if (this.#inFlight >= this.#maxInFlight) {
      // Redis answers nothing: fail at once instead of piling up calls it will never answer.
      return Promise.reject(new Error("Redis is not answering"));
    }
    return new Promise<T>((resolve, reject) => {
      this.#calls.push({ command, args, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  async #send(): Promise<void> {
    this.#prepare();
    this.#scheduled = false;
    const calls = this.#calls;
    if (calls.length === 0) return;
    this.#calls = [];
    const pipeline = this.#client.pipeline() as unknown as Pipeline;
    for (const { command, args } of calls) pipeline[command](...args);
    // Counted until Redis answers or the connection fails, not only until the timeout.
    this.#inFlight++;
    const sent = pipeline.exec().finally(() => this.#inFlight--);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("Command timed out")), this.#timeoutMs);
      });
      const results = await Promise.race([sent, timeout]);
      calls.forEach((call, i) => {
        const [error, value] = results?.[i] ?? [new Error("No reply"), null];
        if (error) call.reject(error);
        else call.resolve(value);
      });
    } catch (err) {
      for (const call of calls) call.reject(err as Error);
    } finally {
      clearTimeout(timer);
    }
  }
}
