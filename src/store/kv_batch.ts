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
  /** {@linkcode valueBytes} of `value`, when the caller has it already. */
  bytes?: number;
}

/**
 * A KvU64 counter that items add to. Built once ({@linkcode kvCounter}) and shared by every item
 * adding to it, so its identity and size are measured once, not per item.
 */
export interface KvCounter {
  readonly key: Deno.KvKey;
  /** {@linkcode keyId} of the key: sums to one counter are merged by it. */
  readonly id: string;
  /** {@linkcode keyBytes} of the key. */
  readonly bytes: number;
}

/** A counter for `key`. */
export function kvCounter(key: Deno.KvKey): KvCounter {
  return { key, id: keyId(key), bytes: keyBytes(key) };
}

/** An addition to a counter: a whole number from 0 (exact up to `Number.MAX_SAFE_INTEGER`). */
export interface KvSum {
  counter: KvCounter;
  amount: number;
}

/** What one item writes; it is committed whole or not at all. */
export interface KvWrite {
  sets: KvSet[];
  sums: KvSum[];
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

/** Characters that are not one byte each in a key (NUL is escaped, the rest is not ASCII). */
// deno-lint-ignore no-control-regex
const NOT_ONE_BYTE = /[^\x01-\x7f]/;

function utf8Bytes(text: string): number {
  if (!NOT_ONE_BYTE.test(text)) return text.length;
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
  const m = measure(item);
  if (m.refusal !== null) return m.refusal;
  // Counting every sum as its own mutation is an upper bound (sums to one counter merge).
  let keys = MARKER_BYTES + m.setKeyBytes;
  let total = 3 * MARKER_BYTES + m.setTotalBytes;
  for (const { counter } of item.sums) {
    keys += counter.bytes;
    total += 2 * counter.bytes + 8;
  }
  const mutations = 1 + item.sets.length + item.sums.length;
  if (
    mutations <= KV_LIMITS.mutations && keys <= KV_LIMITS.totalKeyBytes &&
    total <= KV_LIMITS.totalMutationBytes
  ) return null;
  return new Chunk<KvWrite>().add(item) ? null : "it needs more than one atomic operation";
}

/** An item's sizes, measured once however often it is planned. */
interface Measure {
  setKeyBytes: number;
  setTotalBytes: number;
  /** Why KV cannot take one of the item's parts, whatever it is packed with. */
  refusal: string | null;
}

const measures = new WeakMap<KvWrite, Measure>();

function measure(item: KvWrite): Measure {
  let known = measures.get(item);
  if (known) return known;
  known = { setKeyBytes: 0, setTotalBytes: 0, refusal: null };
  for (const set of item.sets) {
    const size = keyBytes(set.key);
    const bytes = set.bytes ?? valueBytes(set.value);
    if (size > KV_LIMITS.keyBytes) known.refusal ??= "a key is longer than KV allows";
    if (bytes > KV_LIMITS.valueBytes) known.refusal ??= "a value is larger than KV allows";
    known.setKeyBytes += size;
    known.setTotalBytes += 2 * size + bytes;
  }
  for (const { counter, amount } of item.sums) {
    if (counter.bytes > KV_LIMITS.keyBytes) known.refusal ??= "a key is longer than KV allows";
    if (!(Number.isInteger(amount) && amount >= 0)) {
      known.refusal ??= "an amount is negative or not a whole number";
    }
  }
  measures.set(item, known);
  return known;
}

/** The sums to one counter in a chunk, exact past 2^53: `carry` holds what a number cannot. */
interface Merged {
  counter: KvCounter;
  amount: number;
  carry: bigint;
}

/** Items packed into one atomic operation. */
export class Chunk<T extends KvWrite> {
  items: T[] = [];
  #sums = new Map<string, Merged>();
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
    // A counter the item names twice is counted twice: an upper bound, as in tooLarge().
    for (const { counter } of item.sums) {
      if (this.#sums.has(counter.id)) continue;
      mutations++;
      keys += counter.bytes;
      total += 2 * counter.bytes + 8;
    }
    const fits = mutations <= KV_LIMITS.mutations && keys <= KV_LIMITS.totalKeyBytes &&
      total <= KV_LIMITS.totalMutationBytes;
    if (!fits && this.items.length > 0) return false;
    this.#mutations = mutations;
    this.#keyBytes = keys;
    this.#totalBytes = total;
    this.items.push(item);
    for (const { counter, amount } of item.sums) {
      const merged = this.#sums.get(counter.id);
      if (!merged) {
        this.#sums.set(counter.id, { counter, amount, carry: 0n });
        continue;
      }
      const next = merged.amount + amount;
      if (next <= Number.MAX_SAFE_INTEGER) merged.amount = next;
      else {
        merged.carry += BigInt(merged.amount) + BigInt(amount);
        merged.amount = 0;
      }
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
    for (const { counter, amount, carry } of this.#sums.values()) {
      const sum = carry + BigInt(amount);
      if (sum <= 0n) continue;
      mutations.push({
        type: "sum",
        key: counter.key,
        value: new Deno.KvU64(sum > U64_MAX ? U64_MAX : sum),
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
