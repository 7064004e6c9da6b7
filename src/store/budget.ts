/**
 * Reading a budget: its `used` counter, its version entry and every instance's lease. A lease
 * whose `expires` has passed belongs to an instance that stopped renewing it (killed, or cut off
 * from KV): it no longer counts, and the next lease change deletes it.
 */
import { safeAmount } from "./amount.ts";
import { type BudgetDimension, budgetKey, leasePrefix } from "./kv_keys.ts";

/** What one instance holds of a budget. */
export interface Lease {
  amount: number;
  /** When it stops counting unless renewed (ms since the epoch). */
  expires: number;
}

/** A lease as read, with the instance that holds it. */
export interface LeaseEntry extends Lease {
  instance: string;
  key: Deno.KvKey;
}

/** One budget's state in KV. */
export interface BudgetState {
  used: number;
  /** What live leases hold together. */
  reserved: number;
  /** The version entry, to check in an atomic operation that changes a lease. */
  version: Deno.KvEntryMaybe<unknown>;
  live: LeaseEntry[];
  expired: LeaseEntry[];
}

/**
 * Reads a budget. The version entry is read before the leases, so an operation that checks it
 * fails if any lease changed since: the leases read are never newer than the version checked.
 */
export async function readBudget(
  kv: Deno.Kv,
  target: { keyId: string; dimension: BudgetDimension; day: string | null },
  now: number,
): Promise<BudgetState> {
  const { keyId, dimension, day } = target;
  const [used, version] = await kv.getMany<[Deno.KvU64, unknown]>([
    budgetKey(keyId, dimension, day, "used"),
    budgetKey(keyId, dimension, day, "version"),
  ]);
  const live: LeaseEntry[] = [];
  const expired: LeaseEntry[] = [];
  for await (
    const entry of kv.list<Partial<Lease>>({ prefix: leasePrefix(keyId, dimension, day) })
  ) {
    const lease: LeaseEntry = {
      instance: String(entry.key[entry.key.length - 1]),
      key: entry.key,
      amount: safeAmount(Number(entry.value?.amount)),
      expires: Number(entry.value?.expires) || 0,
    };
    (lease.expires > now ? live : expired).push(lease);
  }
  return {
    used: used.value instanceof Deno.KvU64 ? Number(used.value.value) : 0,
    reserved: live.reduce((sum, lease) => sum + lease.amount, 0),
    version,
    live,
    expired,
  };
}
