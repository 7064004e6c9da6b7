/**
 * The gateway's view of the key set: an in-memory index of key hashes plus short-lived record
 * caches. An unknown key is refused from memory, so a flood of random keys never reaches KV; a
 * change made anywhere (disable, delete, rotate, limits) is seen within `refreshMs`. A change is
 * applied from the change log (the pointers of the hashes it touched are read again, the records
 * it touched dropped from the cache), so its cost does not grow with the number of keys; the whole
 * index is read at start, after a gap in the log, and at most every {@linkcode FULL_RELOAD_MS}
 * (which also drops the pointers of rotated keys whose grace has run out).
 */
import type { Logger } from "../log.ts";
import { KEY_CHANGE_TTL_MS, type KeyStore } from "../store/key_store.ts";
import type { KeyRecord } from "../store/model.ts";

/** Options for {@linkcode KeyDirectory}. */
export interface KeyDirectoryOptions {
  store: KeyStore;
  log: Logger;
  now: () => number;
  /** How stale a cached record or the index may be, in ms (default 1000). */
  refreshMs?: number;
  /** Changed pointers a refresh reads at most; past it the index is reloaded whole (2,000). */
  maxPointerReads?: number;
}

/** Longest time between two whole reloads of the index while keys change. */
export const FULL_RELOAD_MS = 10 * 60_000;
/**
 * How far behind this instance's clock another writer's may be: the log is read from this long
 * before the last sync (what a larger skew hides is repaired by the next whole reload).
 */
const CLOCK_SKEW_MS = 60_000;

interface Cached {
  record: KeyRecord | null;
  at: number;
}

/** Resolves a presented key's hash to its record. */
export class KeyDirectory {
  #store: KeyStore;
  #log: Logger;
  #now: () => number;
  #refreshMs: number;
  #maxPointerReads: number;
  #index = new Map<string, string>();
  #version = -1n;
  #checkedAt = -Infinity;
  #syncing: Promise<void> | null = null;
  #records = new Map<string, Cached>();
  /** Changes of the log already applied, and when (forgotten once the log has dropped them). */
  #applied = new Map<string, number>();
  /** When the last sync started that left the index current, and when it was last read whole. */
  #syncedAt = -Infinity;
  #loadedAt = -Infinity;
  #reloads = 0;

  constructor(options: KeyDirectoryOptions) {
    this.#store = options.store;
    this.#log = options.log;
    this.#now = options.now;
    this.#refreshMs = options.refreshMs ?? 1000;
    this.#maxPointerReads = options.maxPointerReads ?? 2000;
  }

  /** Whole reloads of the index since start (the first included). */
  get reloads(): number {
    return this.#reloads;
  }

  /** Loads the index; call once before serving. */
  async start(): Promise<void> {
    await this.#sync(true);
  }

  /** Forgets cached state so this instance's own changes apply at once. */
  invalidate(id?: string): void {
    if (id) this.#records.delete(id);
    this.#checkedAt = -Infinity;
  }

  /**
   * The answer of {@linkcode lookup} when it needs no wait (the index is loaded, no refresh is
   * pending for an unknown hash, and the record is cached), else undefined.
   */
  cached(hash: string): KeyRecord | null | undefined {
    if (this.#version < 0n) return undefined;
    void this.#maybeSync();
    const id = this.#index.get(hash);
    if (!id) return this.#syncing ? undefined : null;
    const cached = this.#records.get(id);
    if (!cached || this.#now() - cached.at >= this.#refreshMs) return undefined;
    return this.#current(cached.record, hash);
  }

  /** The record a hash belongs to if it is a current credential, else null. */
  async lookup(hash: string): Promise<KeyRecord | null> {
    await this.#maybeSync();
    let id = this.#index.get(hash);
    if (!id && this.#syncing) {
      // A refresh is already under way (e.g. a key was just created): its answer is worth a wait.
      await this.#syncing;
      id = this.#index.get(hash);
    }
    if (!id) return null;
    return this.#current(await this.#record(id), hash);
  }

  /** The record if `hash` is its key, or its previous key within the rotation's grace. */
  #current(record: KeyRecord | null, hash: string): KeyRecord | null {
    if (!record) return null;
    if (record.hash === hash) return record;
    const graceEnds = record.previous_expires_at ? Date.parse(record.previous_expires_at) : 0;
    return record.previous_hash === hash && this.#now() < graceEnds ? record : null;
  }

  async #record(id: string): Promise<KeyRecord | null> {
    const cached = this.#records.get(id);
    const now = this.#now();
    if (cached && now - cached.at < this.#refreshMs) return cached.record;
    const record = await this.#store.get(id);
    this.#records.set(id, { record, at: now });
    if (this.#records.size > 100_000) this.#records.delete(this.#records.keys().next().value!);
    return record;
  }

  #maybeSync(): Promise<void> {
    if (this.#now() - this.#checkedAt < this.#refreshMs) return Promise.resolve();
    this.#syncing ??= this.#sync(false).catch((err) => {
      this.#log.error("key index refresh failed", { error: (err as Error).message });
    }).finally(() => {
      this.#syncing = null;
    });
    // Requests wait only for the first load; later refreshes run beside them.
    return this.#version < 0n ? this.#syncing : Promise.resolve();
  }

  async #sync(force: boolean): Promise<void> {
    const now = this.#now();
    this.#checkedAt = now;
    const version = await this.#store.version();
    if (!force && version === this.#version) {
      this.#syncedAt = now;
      return;
    }
    // The log covers what changed since the last sync only if that sync is recent enough.
    const logCovers = now - this.#syncedAt < KEY_CHANGE_TTL_MS / 2;
    const fresh = force || !logCovers || now - this.#loadedAt >= FULL_RELOAD_MS
      ? null
      : (await this.#store.changes(this.#syncedAt - CLOCK_SKEW_MS))
        .filter((change) => !this.#applied.has(change.id));
    const hashes = new Set(fresh?.flatMap((change) => change.hashes));
    // Past a few thousand changed pointers (a bulk import), one listing beats reading each.
    if (fresh === null || hashes.size > this.#maxPointerReads) {
      // Changes listed before the index are in it; one made in between is applied again later.
      const changes = await this.#store.changes();
      this.#index = await this.#store.hashIndex();
      this.#applied = new Map(changes.map((change) => [change.id, now]));
      // Records may have changed with the version: drop them so the next use reads them fresh.
      this.#records.clear();
      this.#loadedAt = now;
      this.#reloads++;
    } else {
      // The pointers as they are now, whatever order the changes came in. A failure here leaves
      // every change unapplied, for the next sync to try again.
      const pointers = await this.#store.pointers([...hashes]);
      for (const [hash, id] of pointers) {
        if (id === null) this.#index.delete(hash);
        else this.#index.set(hash, id);
      }
      for (const change of fresh) {
        this.#applied.set(change.id, now);
        for (const id of change.ids) this.#records.delete(id);
      }
      for (const [id, at] of this.#applied) {
        if (now - at > KEY_CHANGE_TTL_MS) this.#applied.delete(id);
      }
    }
    this.#version = version;
    this.#syncedAt = now;
  }
}
