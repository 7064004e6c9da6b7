/**
 * Which blocks a request of a key is charged to. Looked up once per key record and day, not per
 * request: the key directory hands out the same record object until the key changes or its cache
 * entry is refreshed, so a request finds its blocks without building a string or a key.
 */
import type { BudgetDimension } from "./kv_keys.ts";
import { type Block, budgetId, newBlock } from "./lease_keeper.ts";
import type { KeyRecord } from "./model.ts";

/** The budget dimensions, in the order {@linkcode KeyBudgets} lists them. */
export const DIMENSIONS: readonly BudgetDimension[] = ["tokens", "day_tokens", "day_requests"];

/** A key's budgets on one day. */
export interface KeyBudgets {
  keyId: string;
  day: string;
  /** Per dimension: the block, or null when the key has no limit in it (only `used` grows). */
  blocks: readonly (Block | null)[];
  /** Per dimension: the budget's id (its block's, or its untracked usage's). */
  ids: readonly string[];
}

/** The key's limit in dimension `index` of {@linkcode DIMENSIONS}. */
export function limitOf(key: KeyRecord, index: number): number | null {
  return index === 0 ? key.quota_tokens : index === 1 ? key.daily_tokens : key.daily_requests;
}

/** Finds the blocks of a key's budgets, creating them in `blocks` when they are new. */
export class BudgetIndex {
  #blocks: Map<string, Block>;
  #byRecord = new WeakMap<KeyRecord, KeyBudgets>();

  constructor(blocks: Map<string, Block>) {
    this.#blocks = blocks;
  }

  /** The budgets of `key` on `day`; each block takes the key's limit and is marked used `now`. */
  of(key: KeyRecord, day: string, now: number): KeyBudgets {
    let budgets = this.#byRecord.get(key);
    if (budgets === undefined || !fits(budgets, key, day)) {
      budgets = this.#find(key, day, now);
      this.#byRecord.set(key, budgets);
    }
    for (let i = 0; i < DIMENSIONS.length; i++) {
      const block = budgets.blocks[i];
      if (block === null) continue;
      block.limit = limitOf(key, i)!;
      block.lastUsed = now;
    }
    return budgets;
  }

  #find(key: KeyRecord, day: string, now: number): KeyBudgets {
    const ids: string[] = [];
    const blocks: (Block | null)[] = [];
    DIMENSIONS.forEach((dimension, i) => {
      const ref = { keyId: key.id, dimension, day: dimension === "tokens" ? null : day };
      const id = budgetId(ref.keyId, dimension, ref.day);
      const limit = limitOf(key, i);
      let block = this.#blocks.get(id) ?? null;
      if (limit !== null && block === null) {
        block = newBlock(ref, limit, now);
        this.#blocks.set(id, block);
      }
      ids.push(id);
      blocks.push(limit === null ? null : block);
    });
    return { keyId: key.id, day, blocks, ids };
  }
}

/** Whether budgets found earlier still hold for `key` on `day`. */
function fits(budgets: KeyBudgets, key: KeyRecord, day: string): boolean {
  if (budgets.day !== day) return false;
  for (let i = 0; i < DIMENSIONS.length; i++) {
    const block = budgets.blocks[i];
    if ((block === null) !== (limitOf(key, i) === null)) return false;
    // A deleted key's block is looked up again, as it is while it lasts; a retired one is gone.
    if (block !== null && (block.deleted || block.retired)) return false;
  }
  return true;
}
