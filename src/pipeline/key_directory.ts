/**
 * The gateway's view of the key set: an in-memory index of key hashes plus short-lived record
 * caches. An unknown key is refused from memory, so a flood of random keys never reaches KV; a
 * change made anywhere (disable, delete, rotate, limits) is seen within `refreshMs`.
 */
import type { Logger } from "../log.ts";
import type { KeyStore } from "../store/key_store.ts";
import type { KeyRecord } from "../store/model.ts";

/** Options for {@linkcode KeyDirectory}. */
export interface KeyDirectoryOptions {
  store: KeyStore;
  log: Logger;
  now: () => number;
  /** How stale a cached record or the index may be, in ms (default 1000). */
  refreshMs?: number;
}

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
  #index = new Map<string, string>();
  #version = -1n;
  #checkedAt = -Infinity;
  #syncing: Promise<void> | null = null;
  #records = new Map<string, Cached>();

  constructor(options: KeyDirectoryOptions) {
    this.#store = options.store;
    this.#log = options.log;
    this.#now = options.now;
    this.#refreshMs = options.refreshMs ?? 1000;
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
    this.#checkedAt = this.#now();
    const version = await this.#store.version();
    if (!force && version === this.#version) return;
    this.#index = await this.#store.hashIndex();
    this.#version = version;
    // Records may have changed with the version: drop them so the next use reads them fresh.
    this.#records.clear();
  }
}
