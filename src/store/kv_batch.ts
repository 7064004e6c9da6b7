/**
 * Packing many independent items into as few Deno KV atomic operations as the limits allow.
 *
 * An atomic operation fails whole when it exceeds one of KV's limits (Deno 2.9, ext/kv/config.rs:
 * 1,000 mutations, keys of 2,048 bytes, values of 65,536 bytes, 80 KiB of keys and 800 KiB in
 * total), so items are packed into chunks that stay under all of them, sums to the same key
 * merged. Committing them is kv_commit.ts.
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

/** Room kept in every operation for the commit marker (kv_commit.ts). */
const MARKER_BYTES = 64;

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
export function keyId(key: Deno.KvKey): string {
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
export class Chunk<T extends KvWrite> {
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
