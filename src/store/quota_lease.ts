/**
 * Changing one instance's leases. Every change checks the budget's version entry against the
 * versionstamp the instance last saw and bumps it, so lease changes of all instances on one budget
 * are serialised: an instance never overwrites a lease another instance deleted, and never
 * reserves from a picture of the leases that changed meanwhile.
 */
import type { Lease } from "./budget.ts";
import { KV_LIMITS } from "./kv_batch.ts";
import { type BudgetDimension, budgetKey, leaseKey } from "./kv_keys.ts";

/** Which budget. */
export interface BudgetRef {
  keyId: string;
  dimension: BudgetDimension;
  day: string | null;
}

/** A new amount for this instance's lease of one budget (0 deletes the lease). */
export interface LeaseWrite {
  budget: BudgetRef;
  amount: number;
  /** The version entry's versionstamp the amount was decided on (null: it does not exist). */
  stamp: string | null;
}

/** How leases are written. */
export interface LeaseWriter {
  kv: Deno.Kv;
  instance: string;
  /** A lease stops counting this long after it was written unless renewed. */
  ttlMs: number;
}

/** Adds one lease write (a check, the version bump, the lease itself) to an atomic operation. */
export function addLeaseWrite(
  op: Deno.AtomicOperation,
  writer: LeaseWriter,
  write: LeaseWrite,
  now: number,
): Deno.AtomicOperation {
  const { keyId, dimension, day } = write.budget;
  const version = budgetKey(keyId, dimension, day, "version");
  const key = leaseKey(keyId, dimension, day, writer.instance);
  op.check({ key: version, versionstamp: write.stamp }).sum(version, 1n);
  if (write.amount <= 0) return op.delete(key);
  const lease: Lease = { amount: write.amount, expires: now + writer.ttlMs };
  // expireIn only collects leases of instances that are gone; `expires` is what counts.
  return op.set(key, lease, { expireIn: writer.ttlMs * 10 });
}

/**
 * Commits lease writes, as many per atomic operation as KV Connect allows checks. Returns, for
 * each write, the versionstamp it was committed with, or null when a check of its operation
 * failed (some budget of it changed: the caller reads again and decides again).
 */
export async function commitLeaseWrites(
  writer: LeaseWriter,
  writes: LeaseWrite[],
  now: number,
): Promise<(string | null)[]> {
  const results: (string | null)[] = [];
  for (let i = 0; i < writes.length; i += KV_LIMITS.checks) {
    const group = writes.slice(i, i + KV_LIMITS.checks);
    const op = writer.kv.atomic();
    for (const write of group) addLeaseWrite(op, writer, write, now);
    const result = await op.commit();
    for (const _ of group) results.push(result.ok ? result.versionstamp : null);
  }
  return results;
}

/** The later of two versionstamps (same-length hex strings). */
export function laterStamp(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}
