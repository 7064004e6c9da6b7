/**
 * Committing planned items (kv_batch.ts). A chunk KV still refuses is split in halves until the
 * item it cannot take is alone; that item is given up, the others are written. A failure that is
 * not a refusal (KV away) stops the round and leaves every unwritten item to the caller's next
 * attempt.
 */
import { type Chunk, keyId, type KvWrite, planChunks } from "./kv_batch.ts";

/** What {@linkcode commitWrites} did. */
export interface CommitReport<T> {
  /** Items not written, in their order, for the next attempt. */
  remaining: T[];
  /** The error that stopped the round, if one did. */
  error: Error | null;
}

/**
 * What of a rejected item is written: nothing (KV refused it whole, so its parts may be tried on
 * their own); everything but its sums into `counters` (ids of counters that are not a KvU64); or
 * an unknown part (it must never be written again: that could count twice).
 */
export type Rejection =
  | { written: "none" }
  | { written: "all_but"; counters: ReadonlySet<string> }
  | { written: "unknown" };

/** What to do as items are written or given up. */
export interface CommitHooks<T> {
  /** Runs right after the items' atomic operation committed. */
  committed(items: T[]): void;
  /** An item KV refuses, never retried; `rejection` says what of it is written. */
  rejected(item: T, error: Error, rejection: Rejection): void;
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
      // Local KV kept the mutations before the bad sum: trying any of them again could count twice.
      failures = 0;
      const poisoned = applied === null ? null : await salvage(kv, mutations, applied);
      if (poisoned === null || poisoned === "all") {
        for (const item of batch) hooks.rejected(item, error, { written: "unknown" });
        continue;
      }
      const hit = (item: T) => item.sums.some((sum) => poisoned.has(sum.counter.id));
      for (const item of batch) {
        if (hit(item)) hooks.rejected(item, error, { written: "all_but", counters: poisoned });
      }
      hooks.committed(batch.filter((item) => !hit(item)));
      continue;
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
      hooks.rejected(batch[0], error, { written: "none" });
    } else {
      kept.push(batch[0]);
    }
  }
  return { remaining: kept, error: null };
}

const NOT_U64 = /non-U64/;
const MARKER_TTL_MS = 60_000;

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
