/**
 * Writing many independent items to Deno KV in as few atomic operations as the limits allow.
 *
 * An atomic operation fails whole when it exceeds one of KV's limits (Deno 2.9, ext/kv/config.rs:
 * 1,000 mutations, keys of 2,048 bytes, values of 65,536 bytes, 80 KiB of keys and 800 KiB in
 * total), so items are packed into chunks that stay under all of them, sums to the same key
 * merged. A chunk KV still refuses is split in halves until the item it cannot take is alone;
 * that item is given up, the others are written. A failure that is not a refusal (KV away) stops
 * the round and leaves every unwritten item to the caller's next attempt.
 */

/** Limits of one atomic operation. `checks` is KV Connect's (denokv), lower than local KV's 100. */
export const KV_LIMITS = {
  mutations: 1000,
  checks: 10,
  keyBytes: 2048,
  valueBytes: 65_536,
  totalKeyBytes: 80 * 1024,
  totalMutationBytes: 800 * 1024,
} as const;

/** A KvU64 holds 0..2^64-1; `.sum()` wraps around past the top. */
const U64_MAX = (1n << 64n) - 1n;

/** One `set` of an item. */
export interface KvSet {
  key: Deno.KvKey;
  value: unknown;
  expireIn?: number;
}

/** What one item writes; it is committed whole or not at all. */
export interface KvWrite {
  sets: KvSet[];
  sums: [Deno.KvKey, bigint][];
}

/** The encoded size of a key (FoundationDB tuple layer, as Deno KV encodes keys). */
export function keyBytes(key: Deno.KvKey): number {
  let size = 0;
  for (const part of key) {
    if (typeof part === "string") size += 2 + utf8Bytes(part);
    else if (typeof part === "number") size += 9;
    else if (typeof part === "boolean") size += 1;
    else if (typeof part === "bigint") size += 3 + Math.ceil(part.toString(16).length / 2);
    else if (part instanceof Uint8Array) size += 2 + part.byteLength * 2;
    else size += 64;
  }
  return size;
}

function utf8Bytes(text: string): number {
  let size = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // Surrogate pairs are 2 units and 4 bytes; other non-ASCII 2 or 3 bytes; NUL is escaped.
    if (code === 0 || code > 0x7f) size += code > 0x7ff && (code < 0xd800 || code > 0xdfff) ? 2 : 1;
  }
  return size;
}

/** An identity for a key (bigint parts apart from numbers). */
function keyId(key: Deno.KvKey): string {
  for (const part of key) if (typeof part === "bigint") return JSON.stringify(key, bigints);
  return JSON.stringify(key);
}

function bigints(_: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}

/**
 * An upper bound of a value's size as KV stores it (V8 serialisation): strings at two bytes per
 * unit, numbers as doubles, a few bytes of framing per value.
 */
export function valueBytes(value: unknown): number {
  if (typeof value === "string") return 6 + value.length * 2;
  if (typeof value === "number") return 9;
  if (typeof value === "bigint") return 12 + value.toString(16).length;
  if (value === null || typeof value !== "object") return 2;
  if (value instanceof Deno.KvU64) return 16;
  let size = 12;
  if (Array.isArray(value)) {
    for (const item of value) size += valueBytes(item);
    return size;
  }
  const record = value as Record<string, unknown>;
  for (const name in record) {
    if (!Object.hasOwn(record, name)) continue;
    const item = record[name];
    size += 6 + name.length * 2 +
      (typeof item === "string"
        ? 6 + item.length * 2
        : typeof item === "number"
        ? 9
        : valueBytes(item));
  }
  return size;
}

/** Why an item alone does not fit in an atomic operation, or null when it does. */
export function tooLarge(item: KvWrite): string | null {
  let keys = MARKER_BYTES;
  let total = 3 * MARKER_BYTES;
  for (const { key, value } of item.sets) {
    const size = keyBound(key);
    if (size > KV_LIMITS.keyBytes && keyBytes(key) > KV_LIMITS.keyBytes) {
      return "a key is longer than KV allows";
    }
    const bytes = valueBytes(value);
    if (bytes > KV_LIMITS.valueBytes) return "a value is larger than KV allows";
    keys += size;
    total += 2 * size + bytes;
  }
  for (const [key] of item.sums) {
    const size = keyBound(key);
    if (size > KV_LIMITS.keyBytes && keyBytes(key) > KV_LIMITS.keyBytes) {
      return "a key is longer than KV allows";
    }
    keys += size;
    total += 2 * size + 8;
  }
  // Sizes so far are upper bounds (3 bytes a character): exact ones only if the bounds fail.
  const mutations = 1 + item.sets.length + item.sums.length;
  if (mutations > KV_LIMITS.mutations) return "it needs more than one atomic operation";
  if (keys <= KV_LIMITS.totalKeyBytes && total <= KV_LIMITS.totalMutationBytes) return null;
  return new Chunk<KvWrite>().add(item) ? null : "it needs more than one atomic operation";
}

/** An upper bound of a key's encoded size, cheaper than {@linkcode keyBytes}. */
function keyBound(key: Deno.KvKey): number {
  let bound = 0;
  for (const part of key) bound += typeof part === "string" ? 2 + 3 * part.length : 64;
  return bound;
}

/** An item's sizes, measured once however often it is planned. */
interface Measure {
  setKeyBytes: number;
  setTotalBytes: number;
  sumIds: string[];
  /** Filled in when first needed (-1 until then): most sums merge into one already counted. */
  sumKeyBytes: number[];
}

const measures = new WeakMap<KvWrite, Measure>();

function measure(item: KvWrite): Measure {
  let known = measures.get(item);
  if (known) return known;
  known = { setKeyBytes: 0, setTotalBytes: 0, sumIds: [], sumKeyBytes: [] };
  for (const { key, value } of item.sets) {
    const size = keyBytes(key);
    known.setKeyBytes += size;
    known.setTotalBytes += 2 * size + valueBytes(value);
  }
  for (const [key] of item.sums) {
    known.sumIds.push(keyId(key));
    known.sumKeyBytes.push(-1);
  }
  measures.set(item, known);
  return known;
}

function sumKeyBytes(item: KvWrite, m: Measure, i: number): number {
  if (m.sumKeyBytes[i] < 0) m.sumKeyBytes[i] = keyBytes(item.sums[i][0]);
  return m.sumKeyBytes[i];
}

/** Items packed into one atomic operation. */
class Chunk<T extends KvWrite> {
  items: T[] = [];
  #sums = new Map<string, { key: Deno.KvKey; amount: bigint }>();
  // Room for the commit marker every operation carries.
  #mutations = 1;
  #keyBytes = MARKER_BYTES;
  #totalBytes = 2 * MARKER_BYTES + 16;

  /** Adds `item` if it fits beside what the chunk holds (an empty chunk takes any item). */
  add(item: T): boolean {
    const m = measure(item);
    let mutations = this.#mutations + item.sets.length;
    let keys = this.#keyBytes + m.setKeyBytes;
    let total = this.#totalBytes + m.setTotalBytes;
    for (let i = 0; i < m.sumIds.length; i++) {
      if (this.#sums.has(m.sumIds[i])) continue;
      const size = sumKeyBytes(item, m, i);
      mutations++;
      keys += size;
      total += 2 * size + 8;
    }
    const fits = mutations <= KV_LIMITS.mutations && keys <= KV_LIMITS.totalKeyBytes &&
      total <= KV_LIMITS.totalMutationBytes;
    if (!fits && this.items.length > 0) return false;
    this.#mutations = mutations;
    this.#keyBytes = keys;
    this.#totalBytes = total;
    this.items.push(item);
    for (let i = 0; i < m.sumIds.length; i++) {
      const [key, amount] = item.sums[i];
      const entry = this.#sums.get(m.sumIds[i]);
      if (entry) entry.amount += amount;
      else this.#sums.set(m.sumIds[i], { key, amount });
    }
    return fits;
  }

  /** The chunk's mutations in commit order: every set, then the merged sums. */
  mutations(): Deno.KvMutation[] {
    const mutations: Deno.KvMutation[] = [];
    for (const item of this.items) {
      for (const { key, value, expireIn } of item.sets) {
        mutations.push({ type: "set", key, value, expireIn });
      }
    }
    for (const { key, amount } of this.#sums.values()) {
      if (amount <= 0n) continue;
      mutations.push({
        type: "sum",
        key,
        value: new Deno.KvU64(amount > U64_MAX ? U64_MAX : amount),
      });
    }
    return mutations;
  }
}

/** Packs items, in order, into chunks that each fit in one atomic operation. */
export function planChunks<T extends KvWrite>(items: T[]): Chunk<T>[] {
  const chunks: Chunk<T>[] = [];
  let chunk = new Chunk<T>();
  for (const item of items) {
    if (chunk.add(item)) continue;
    if (chunk.items.at(-1) !== item) {
      // It did not fit beside the others: it starts the next chunk.
      chunks.push(chunk);
      chunk = new Chunk<T>();
      if (chunk.add(item)) continue;
    }
    // Too large even alone: a chunk of its own, which KV will refuse.
    chunks.push(chunk);
    chunk = new Chunk<T>();
  }
  if (chunk.items.length > 0) chunks.push(chunk);
  return chunks;
}

/** What {@linkcode commitWrites} did. */
export interface CommitReport<T> {
  /** Items not written, in their order, for the next attempt. */
  remaining: T[];
  /** The error that stopped the round, if one did. */
  error: Error | null;
}

/** What to do as items are written or given up. */
export interface CommitHooks<T> {
  /** Runs right after the items' atomic operation committed. */
  committed(items: T[]): void;
  /** An item KV refuses (wholly, or a sum into a counter that is not a KvU64): never retried. */
  rejected(item: T, error: Error): void;
}

/** Failures in a row, without a refusal, after which KV counts as unavailable for this round. */
const GIVE_UP_AFTER = 3;

/**
 * Writes items chunk by chunk. A refused chunk (KV raises TypeError or RangeError for limits and
 * invalid values) is split in halves until the refused item is alone; it goes to `rejected`.
 * Any other failure is retried by splitting too (so one bad item cannot hold the others back), but
 * after {@linkcode GIVE_UP_AFTER} failures in a row the round stops and the rest is returned.
 *
 * Each operation also sets a short-lived marker, read after a failure: it tells an operation that
 * was applied although its answer was lost (KV Connect) from one that was not, and it shows when
 * local KV applied part of an operation, which it does when a sum meets a value that is not a
 * KvU64 (Deno 2.9 keeps the mutations before the failing one).
 */
export async function commitWrites<T extends KvWrite>(
  kv: Deno.Kv,
  items: T[],
  hooks: CommitHooks<T>,
): Promise<CommitReport<T>> {
  const todo: Chunk<T>[] = planChunks(items);
  const kept: T[] = [];
  let failures = 0;
  while (todo.length > 0) {
    const chunk = todo.shift()!;
    const batch = chunk.items;
    const mutations = chunk.mutations();
    const marker = markerKey();
    let error: Error;
    try {
      await commitWithMarker(kv, mutations, marker);
      failures = 0;
      hooks.committed(batch);
      continue;
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    const applied = await readMarker(kv, marker);
    if (applied && !NOT_U64.test(error.message)) {
      // Applied whole; only the answer was lost.
      failures = 0;
      hooks.committed(batch);
      continue;
    }
    if (NOT_U64.test(error.message)) {
      const poisoned = await salvage(kv, mutations, applied === true);
      if (poisoned !== null) {
        failures = 0;
        const hit = (item: T) =>
          poisoned === "all" || item.sums.some(([key]) => poisoned.has(keyId(key)));
        for (const item of batch) if (hit(item)) hooks.rejected(item, error);
        hooks.committed(batch.filter((item) => !hit(item)));
        continue;
      }
    }
    const refused = error instanceof TypeError || error instanceof RangeError;
    if (!refused && ++failures >= GIVE_UP_AFTER) {
      kept.push(...batch);
      for (const rest of todo) kept.push(...rest.items);
      return { remaining: kept, error };
    }
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      todo.unshift(...planChunks(batch.slice(0, half)), ...planChunks(batch.slice(half)));
    } else if (refused) {
      hooks.rejected(batch[0], error);
    } else {
      kept.push(batch[0]);
    }
  }
  return { remaining: kept, error: null };
}

const NOT_U64 = /non-U64/;
const MARKER_TTL_MS = 60_000;
const MARKER_BYTES = 64;

function markerKey(): Deno.KvKey {
  return ["meta", "commit", crypto.randomUUID()];
}

async function commitWithMarker(
  kv: Deno.Kv,
  mutations: Deno.KvMutation[],
  marker: Deno.KvKey,
): Promise<void> {
  await kv.atomic()
    .mutate({ type: "set", key: marker, value: 1, expireIn: MARKER_TTL_MS }, ...mutations)
    .commit();
}

/** Whether the marker of a failed operation exists; null when KV cannot tell. */
async function readMarker(kv: Deno.Kv, marker: Deno.KvKey): Promise<boolean | null> {
  try {
    return (await kv.get(marker)).versionstamp !== null;
  } catch {
    return null;
  }
}

/**
 * After a sum met a counter that is not a KvU64: finds every such counter among the sums, then
 * writes what the failed operation did not (all of it, or, when its first part was applied, what
 * came after the first bad counter), leaving the bad counters alone. Returns the bad counters'
 * ids ("all" when the rest could not be written either), or null when none is found (the failure
 * was something else).
 */
async function salvage(
  kv: Deno.Kv,
  mutations: Deno.KvMutation[],
  prefixApplied: boolean,
): Promise<Set<string> | "all" | null> {
  const sums = mutations.filter((m) => m.type === "sum");
  const poisoned = new Set<string>();
  try {
    for (let i = 0; i < sums.length; i += 10) {
      const entries = await kv.getMany(sums.slice(i, i + 10).map((m) => m.key));
      for (const entry of entries) {
        if (entry.value !== null && !(entry.value instanceof Deno.KvU64)) {
          poisoned.add(keyId(entry.key));
        }
      }
    }
  } catch {
    return null;
  }
  if (poisoned.size === 0) return null;
  const bad = (m: Deno.KvMutation) => poisoned.has(keyId(m.key));
  const first = mutations.findIndex(bad);
  const rest = (prefixApplied ? mutations.slice(first + 1) : mutations).filter((m) => !bad(m));
  try {
    if (rest.length > 0) await commitWithMarker(kv, rest, markerKey());
  } catch {
    // Part of it may be written: retrying could count twice, so all of it is given up.
    return "all";
  }
  return poisoned;
}
