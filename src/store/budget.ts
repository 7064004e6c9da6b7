/** Reading a key's budget counters (KvU64 totals that only grow). */
import { type BudgetDimension, budgetKey } from "./kv_keys.ts";

/** One budget's state in KV. */
export interface BudgetState {
  used: number;
  reserved: number;
  entries: Deno.KvEntryMaybe<Deno.KvU64>[];
}

/** Reads used and reserved of one budget, with the entries to check in an atomic op. */
export async function readBudget(
  kv: Deno.Kv,
  id: string,
  dimension: BudgetDimension,
  day: string | null,
): Promise<BudgetState> {
  const entries = await kv.getMany<Deno.KvU64[]>([
    budgetKey(id, dimension, day, "used"),
    budgetKey(id, dimension, day, "reserved_added"),
    budgetKey(id, dimension, day, "reserved_released"),
  ]);
  const [used, added, released] = entries.map((entry) => Number(entry.value?.value ?? 0n));
  return { used, reserved: Math.max(0, added - released), entries };
}
