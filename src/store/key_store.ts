/** API keys in Deno KV: the record under ["keys", id], pointers from hashes, a change version. */
import type { KeyDefaults } from "../config.ts";
import { GatewayError } from "../errors.ts";
import { readBudget } from "./budget.ts";
import {
  type BudgetDimension,
  budgetKey,
  KEY_CHANGES,
  keyByHashKey,
  keyChangeKey,
  keyLeasesPrefix,
  keyRecordKey,
  KEYS,
  KEYS_BY_HASH,
  KEYS_VERSION,
  quotaPrefix,
} from "./kv_keys.ts";
import type { KeyFields, KeyRecord, KeyUsage, KeyView, Page } from "./model.ts";
import {
  displayPrefix,
  generateApiKey,
  hashApiKey,
  newId,
  timeOrderedId,
  timeOrderedPrefix,
} from "./secrets.ts";

const MAX_ATTEMPTS = 10;

/**
 * How long a key change stays in the change log. An instance refreshes from the log while it has
 * synced within half of this; after a longer gap it reloads the whole index.
 */
export const KEY_CHANGE_TTL_MS = 10 * 60_000;

/** One key change: the ids whose records and the hashes whose pointers it may have changed. */
export interface KeyChange {
  id: string;
  ids: string[];
  hashes: string[];
}

/**
 * Bumps the key set's version and logs what the change touched, in the change's own operation.
 * Log ids are time-ordered (by the writer's clock), so readers can list from where they were.
 */
function logChange(
  op: Deno.AtomicOperation,
  now: number,
  ids: string[],
  hashes: (string | null)[],
): Deno.AtomicOperation {
  const touched = [...new Set(hashes.filter((hash): hash is string => hash !== null))];
  return op
    .set(keyChangeKey(timeOrderedId(now)), { ids, hashes: touched }, {
      expireIn: KEY_CHANGE_TTL_MS,
    })
    .sum(KEYS_VERSION, 1n);
}

/** A key just created or rotated: the plaintext exists only in this value. */
export interface IssuedKey {
  key: string;
  record: KeyRecord;
}

/** Options for {@linkcode KeyStore}. */
export interface KeyStoreOptions {
  kv: Deno.Kv;
  now?: () => number;
}

/** Keys: create, read, list, change, rotate, delete. Every multi-key change is one atomic op. */
export class KeyStore {
  readonly kv: Deno.Kv;
  readonly now: () => number;

  constructor(options: KeyStoreOptions) {
    this.kv = options.kv;
    this.now = options.now ?? Date.now;
  }

  /** Creates a key from admin fields and config defaults. */
  async create(fields: KeyFields & { name: string }, defaults: KeyDefaults): Promise<IssuedKey> {
    const key = generateApiKey();
    const time = new Date(this.now()).toISOString();
    const record: KeyRecord = {
      id: newId("key"),
      name: fields.name,
      group: fields.group ?? "default",
      prefix: displayPrefix(key),
      hash: hashApiKey(key),
      created_at: time,
      updated_at: time,
      expires_at: fields.expires_at ?? null,
      disabled: fields.disabled ?? false,
      quota_tokens: pick(fields.quota_tokens, defaults.quota_tokens),
      daily_tokens: pick(fields.daily_tokens, defaults.daily_tokens),
      daily_requests: pick(fields.daily_requests, defaults.daily_requests),
      rpm: pick(fields.rpm, defaults.rpm),
      burst: pick(fields.burst, defaults.burst),
      tpm: pick(fields.tpm, defaults.tpm),
      max_concurrency: pick(fields.max_concurrency, defaults.max_concurrency),
      allowed_ips: fields.allowed_ips ?? defaults.allowed_ips,
      allowed_models: fields.allowed_models ?? defaults.allowed_models,
      default_model: fields.default_model ?? null,
      metadata: fields.metadata ?? {},
      previous_hash: null,
      previous_expires_at: null,
    };
    const op = this.kv.atomic()
      .check({ key: keyByHashKey(record.hash), versionstamp: null })
      .set(keyRecordKey(record.id), record)
      .set(keyByHashKey(record.hash), record.id);
    const result = await logChange(op, this.now(), [record.id], [record.hash]).commit();
    if (!result.ok) throw new Error("Key creation conflicted; try again");
    return { key, record };
  }

  /** A key by id, or null. */
  async get(id: string): Promise<KeyRecord | null> {
    return (await this.kv.get<KeyRecord>(keyRecordKey(id))).value;
  }

  /** A key by id, or 404. */
  async require(id: string): Promise<KeyRecord> {
    const record = await this.get(id);
    if (!record) throw keyNotFound(id);
    return record;
  }

  /** Pages through keys in id order; `search` matches name or group (case-insensitive). */
  async list(
    options: { cursor?: string; limit?: number; search?: string },
  ): Promise<Page<KeyRecord>> {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
    const needle = options.search?.toLowerCase() ?? "";
    const data: KeyRecord[] = [];
    const iterator = this.kv.list<KeyRecord>({ prefix: KEYS }, {
      cursor: options.cursor || undefined,
      batchSize: 200,
    });
    let cursor: string | null = null;
    for await (const entry of iterator) {
      const record = entry.value;
      if (needle && !`${record.name}\u0000${record.group}`.toLowerCase().includes(needle)) continue;
      data.push(record);
      if (data.length === limit) {
        cursor = iterator.cursor;
        break;
      }
    }
    return { data, next_cursor: cursor };
  }

  /** Every hash pointer: hash -> id (used to build an instance's in-memory index). */
  async hashIndex(): Promise<Map<string, string>> {
    const index = new Map<string, string>();
    for await (const entry of this.kv.list<string>({ prefix: KEYS_BY_HASH })) {
      index.set(entry.key[1] as string, entry.value);
    }
    return index;
  }

  /** The ids of the given hashes' pointers (null where there is none), read now. */
  async pointers(hashes: string[]): Promise<Map<string, string | null>> {
    const found = new Map<string, string | null>();
    // getMany takes at most 10 keys; the batches are read side by side (one round trip each).
    const batches: string[][] = [];
    for (let start = 0; start < hashes.length; start += 10) {
      batches.push(hashes.slice(start, start + 10));
    }
    await Promise.all(batches.map(async (batch) => {
      const entries = await this.kv.getMany<string[]>(batch.map(keyByHashKey));
      batch.forEach((hash, i) => found.set(hash, entries[i].value));
    }));
    return found;
  }

  /**
   * The recent key changes (those of the last {@linkcode KEY_CHANGE_TTL_MS} at least), all of
   * them or those logged at `sinceMs` or later by their writers' clocks.
   */
  async changes(sinceMs?: number): Promise<KeyChange[]> {
    const changes: KeyChange[] = [];
    const selector: Deno.KvListSelector = sinceMs === undefined ? { prefix: KEY_CHANGES } : {
      prefix: KEY_CHANGES,
      start: keyChangeKey(timeOrderedPrefix(sinceMs)),
    };
    for await (const entry of this.kv.list<Omit<KeyChange, "id">>(selector)) {
      changes.push({ id: String(entry.key[2]), ...entry.value });
    }
    return changes;
  }

  /** The change version of the key set; differs after any create, change, rotate or delete. */
  async version(): Promise<bigint> {
    return (await this.kv.get<Deno.KvU64>(KEYS_VERSION)).value?.value ?? 0n;
  }

  /** Applies admin fields to a key. */
  update(id: string, fields: KeyFields): Promise<KeyRecord> {
    return this.#change(id, (record) => ({ ...record, ...fields }));
  }

  /** Replaces a key's secret; the old one keeps working for `graceSeconds`. */
  async rotate(id: string, graceSeconds: number): Promise<IssuedKey> {
    const key = generateApiKey();
    const hash = hashApiKey(key);
    const graceMs = Math.max(0, graceSeconds) * 1000;
    const record = await this.#change(id, (current) => ({
      ...current,
      hash,
      prefix: displayPrefix(key),
      previous_hash: graceMs > 0 ? current.hash : null,
      previous_expires_at: graceMs > 0 ? new Date(this.now() + graceMs).toISOString() : null,
    }), (op, before, after) => {
      op.delete(keyByHashKey(before.hash)).set(keyByHashKey(after.hash), after.id);
      if (before.previous_hash) op.delete(keyByHashKey(before.previous_hash));
      // The old pointer stays only for the grace period; the record's expiry is what counts.
      if (after.previous_hash) {
        op.set(keyByHashKey(after.previous_hash), after.id, { expireIn: graceMs + 60_000 });
      }
    });
    return { key, record };
  }

  /** Deletes a key, its pointers, its lifetime counters and every instance's leases. */
  async delete(id: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.kv.get<KeyRecord>(keyRecordKey(id));
      if (!entry.value) throw keyNotFound(id);
      const op = logChange(
        this.kv.atomic().check(entry).delete(keyRecordKey(id)).delete(
          keyByHashKey(entry.value.hash),
        ),
        this.now(),
        [id],
        [entry.value.hash, entry.value.previous_hash],
      );
      for (const prefix of [quotaPrefix(id), keyLeasesPrefix(id)]) {
        for await (const counter of this.kv.list({ prefix })) op.delete(counter.key);
      }
      if (entry.value.previous_hash) op.delete(keyByHashKey(entry.value.previous_hash));
      if ((await op.commit()).ok) return;
    }
    throw conflict();
  }

  /**
   * Zeroes a key's lifetime and today's usage and deletes every instance's leases of it, in one
   * atomic operation. Bumping the budgets' versions makes each instance notice at its next lease
   * change or renewal that its lease is gone.
   */
  async resetUsage(id: string, day: string): Promise<void> {
    await this.require(id);
    const op = this.kv.atomic();
    const budgets = new Map<string, [BudgetDimension, string | null]>([
      ["tokens|", ["tokens", null]],
      [`day_tokens|${day}`, ["day_tokens", day]],
      [`day_requests|${day}`, ["day_requests", day]],
    ]);
    for (const [dimension, budgetDay] of budgets.values()) {
      op.set(budgetKey(id, dimension, budgetDay, "used"), new Deno.KvU64(0n));
    }
    for await (const lease of this.kv.list({ prefix: keyLeasesPrefix(id) })) {
      op.delete(lease.key);
      const [, , dimension, leaseDay] = lease.key as [string, string, BudgetDimension, string];
      budgets.set(`${dimension}|${leaseDay}`, [dimension, leaseDay || null]);
    }
    for (const [dimension, budgetDay] of budgets.values()) {
      op.sum(budgetKey(id, dimension, budgetDay, "version"), 1n);
    }
    await op.commit();
  }

  /** A key's counters now (`reserved_tokens`: what live leases hold of the lifetime quota). */
  async usage(id: string, day: string): Promise<KeyUsage> {
    const now = this.now();
    const [tokens, dayTokens, dayRequests] = await Promise.all([
      readBudget(this.kv, { keyId: id, dimension: "tokens", day: null }, now),
      readBudget(this.kv, { keyId: id, dimension: "day_tokens", day }, now),
      readBudget(this.kv, { keyId: id, dimension: "day_requests", day }, now),
    ]);
    return {
      used_tokens: tokens.used,
      reserved_tokens: tokens.reserved,
      daily_tokens: dayTokens.used,
      daily_requests: dayRequests.used,
    };
  }

  /** The admin view of a key: no hashes, with counters. */
  async view(record: KeyRecord, day: string): Promise<KeyView> {
    const { hash: _hash, previous_hash: _previous, ...rest } = record;
    return { ...rest, usage: await this.usage(record.id, day) };
  }

  async #change(
    id: string,
    apply: (record: KeyRecord) => KeyRecord,
    extra?: (op: Deno.AtomicOperation, before: KeyRecord, after: KeyRecord) => void,
  ): Promise<KeyRecord> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.kv.get<KeyRecord>(keyRecordKey(id));
      if (!entry.value) throw keyNotFound(id);
      const next = { ...apply(entry.value), id, updated_at: new Date(this.now()).toISOString() };
      const op = logChange(this.kv.atomic().check(entry).set(keyRecordKey(id), next), this.now(), [
        id,
      ], [
        entry.value.hash,
        entry.value.previous_hash,
        next.hash,
        next.previous_hash,
      ]);
      extra?.(op, entry.value, next);
      if ((await op.commit()).ok) return next;
    }
    throw conflict();
  }
}

function pick(value: number | null | undefined, fallback: number | null): number | null {
  return value === undefined ? fallback : value;
}

function keyNotFound(id: string): GatewayError {
  return new GatewayError(`Key "${id}" does not exist`, {
    status: 404,
    type: "invalid_request_error",
    code: "key_not_found",
    param: "id",
  });
}

function conflict(): GatewayError {
  return new GatewayError("The key is being changed concurrently; try again", {
    status: 409,
    type: "invalid_request_error",
    code: "conflict",
  });
}
