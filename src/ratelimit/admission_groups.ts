/**
 * Admissions waiting for this turn's pipeline, grouped by key and limits: each group becomes one
 * script call that admits its requests in order (see ADMIT in redis_scripts.ts), carrying what
 * earlier requests of the key left to settle.
 */
import type { Pending } from "./settle_queue.ts";
import { type RateLimits, requestCapacity } from "./types.ts";

/** The script's answer for one request. */
export interface Admitted {
  ok: boolean;
  reason: string;
  retryMs: number;
  backlogMs: number;
  tokens: number;
}

interface Waiter {
  leaseId: string;
  resolve: (admitted: Admitted) => void;
  reject: (error: Error) => void;
}

interface Group {
  tag: string;
  limits: RateLimits;
  waiters: Waiter[];
}

/** What sending a group needs from the limiter. */
export interface GroupSender {
  /** Sends one script call in this turn's pipeline. */
  call(args: string[]): Promise<unknown[]>;
  /** Takes what the key's finished requests left to settle (carried by this call). */
  take(tag: string): Pending | undefined;
  /** Puts a settlement back when the call carrying it failed. */
  restore(pending: Pending): void;
  /** The clock argument of the scripts ("" for Redis' own). */
  clock(): string;
  leaseTtlMs: number;
}

const num = (value: number | null) => String(value ?? -1);

/** Admissions gathered during one turn. */
export class AdmissionGroups {
  #groups = new Map<string, Group>();

  /** Adds one request of key `tag` (a Redis hash tag prefix) to this turn's groups. */
  add(tag: string, limits: RateLimits, leaseId: string): Promise<Admitted> {
    const id = `${tag}|${limits.rpm}|${limits.burst}|${limits.tpm}|${limits.maxConcurrency}`;
    let group = this.#groups.get(id);
    if (!group) {
      group = { tag, limits, waiters: [] };
      this.#groups.set(id, group);
    }
    const waiters = group.waiters;
    return new Promise((resolve, reject) => waiters.push({ leaseId, resolve, reject }));
  }

  /** Turns every group into one script call and empties the groups. */
  send(sender: GroupSender): void {
    for (const group of this.#groups.values()) sendGroup(sender, group);
    this.#groups.clear();
  }
}

function sendGroup(sender: GroupSender, { tag, limits, waiters }: Group): void {
  const carried = sender.take(tag);
  const releases = carried?.releases ?? [];
  const args = [
    `${tag}:req`,
    `${tag}:tok`,
    `${tag}:slots`,
    sender.clock(),
    num(limits.rpm),
    String(requestCapacity(limits)),
    num(limits.tpm),
    num(limits.maxConcurrency),
    String(sender.leaseTtlMs),
    String(carried?.debit ?? 0),
    String(waiters.length),
    String(releases.length),
  ];
  for (const waiter of waiters) args.push(waiter.leaseId);
  for (const release of releases) args.push(release);
  sender.call(args).then((reply) => {
    // The first `admitted` requests got in; the rest were refused alike (see ADMIT).
    const admitted = Number(reply[0]);
    const reason = String(reply[1]);
    const retryMs = Number(reply[2]);
    const tokens = Number(reply[4]);
    const interval = limits.rpm ? 60_000 / limits.rpm : 0;
    const now = Number(reply[5]);
    // The script's own steps, in the same doubles: each admitted request moves tat one interval,
    // and its backlog is reported at Lua's 14 significant digits, as when checked alone.
    let tat = Number(reply[3]);
    waiters.forEach((waiter, i) => {
      const ok = i < admitted;
      if (ok) tat += interval;
      const backlogMs = Number((tat - now).toPrecision(14));
      waiter.resolve({
        ok,
        reason: ok ? "" : reason,
        retryMs: ok ? 0 : retryMs,
        backlogMs,
        tokens,
      });
    });
  }, (error: Error) => {
    if (carried) sender.restore(carried);
    for (const waiter of waiters) waiter.reject(error);
  });
}
