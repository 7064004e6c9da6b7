/**
 * What finished requests leave to settle in Redis, per key: tokens to debit from the tpm bucket
 * and concurrency leases to release. The key's next admission carries it in its own script (no
 * round trip of its own); what no admission carries soon is sent in one pipeline. Bounded: past
 * `maxReleases` pending leases the oldest are dropped (they expire in Redis by themselves).
 */

/** One key's pending settlement. */
export interface Pending {
  /** The key's Redis hash tag prefix, e.g. `mg:rl:{key_123}`. */
  tag: string;
  /** The key's tpm when its requests were admitted (-1: none). */
  tpm: number;
  debit: number;
  releases: string[];
}

/** Pending settlements, oldest key first. */
export class SettleQueue {
  #byTag = new Map<string, Pending>();
  #releases = 0;
  #max: number;
  #onDrop: (releases: number) => void;

  constructor(maxReleases: number, onDrop: (releases: number) => void) {
    this.#max = maxReleases;
    this.#onDrop = onDrop;
  }

  /** Leases waiting to be released. */
  get releases(): number {
    return this.#releases;
  }

  /** Keys with something to settle. */
  get size(): number {
    return this.#byTag.size;
  }

  /** Adds one finished request's settlement. */
  add(tag: string, tpm: number, debit: number, release: string | null): void {
    const pending = this.#entry(tag, tpm);
    pending.debit += debit;
    if (release !== null) {
      pending.releases.push(release);
      this.#releases++;
    }
    this.#bound();
  }

  /** Removes and returns a key's settlement, for its admission to carry. */
  take(tag: string): Pending | undefined {
    const pending = this.#byTag.get(tag);
    if (!pending) return undefined;
    this.#byTag.delete(tag);
    this.#releases -= pending.releases.length;
    return pending;
  }

  /** Removes and returns every settlement. */
  drain(): Pending[] {
    const all = [...this.#byTag.values()];
    this.#byTag.clear();
    this.#releases = 0;
    return all;
  }

  /** Puts back a settlement whose command failed, to be sent again. */
  restore(pending: Pending): void {
    const entry = this.#entry(pending.tag, pending.tpm);
    entry.debit += pending.debit;
    entry.releases.unshift(...pending.releases);
    this.#releases += pending.releases.length;
    this.#bound();
  }

  #entry(tag: string, tpm: number): Pending {
    let pending = this.#byTag.get(tag);
    if (!pending) {
      pending = { tag, tpm, debit: 0, releases: [] };
      this.#byTag.set(tag, pending);
    }
    pending.tpm = tpm;
    return pending;
  }

  /**
   * Drops the oldest releases past the bound (and keys left with nothing to settle), and the
   * oldest keys' settlements when more than `maxReleases` keys wait.
   */
  #bound(): void {
    let dropped = 0;
    for (const [tag, pending] of this.#byTag) {
      if (this.#byTag.size <= this.#max) break;
      this.#byTag.delete(tag);
      this.#releases -= pending.releases.length;
      dropped += pending.releases.length;
    }
    for (const [tag, pending] of this.#byTag) {
      if (this.#releases <= this.#max) break;
      const excess = Math.min(pending.releases.length, this.#releases - this.#max);
      pending.releases.splice(0, excess);
      this.#releases -= excess;
      dropped += excess;
      if (pending.releases.length === 0 && pending.debit === 0) this.#byTag.delete(tag);
    }
    if (dropped > 0) this.#onDrop(dropped);
  }
}
