/**
 * Reading the books through the admin API of a live instance: every ledger record, every key with
 * its counters, the aggregates; and, straight from KV, the quota leases instances hold.
 */
import { assertEquals } from "../assert.ts";
import { keyLeasesPrefix } from "../../src/store/kv_keys.ts";
import type { KeyView, UsageRecord, UsageRow } from "../../src/store/model.ts";

/** Where the books are read. */
export interface AccountingSource {
  /** Calls the admin API of a live instance (with the admin key). */
  admin(method: string, path: string): Promise<Response>;
  /** The KV the instances share: then every lease of every budget is checked too. */
  kv?: Deno.Kv;
  /** The instance's clock (for "today" and lease expiry); `Date.now` by default. */
  now?: () => number;
}

/** The books as the admin API shows them at one moment of quiet. */
export interface Books {
  records: UsageRecord[];
  keys: KeyView[];
  /** Aggregate rows by key and by model, per hour and per day. */
  aggregates: { by: "key" | "model"; period: "hour" | "day"; rows: UsageRow[] }[];
}

const FAR_PAST = "1970-01-01T00:00:00Z";
const FAR_FUTURE = "9999-12-31T00:00:00Z";

/** Live leases of `keyIds` holding more than `bound`, as `keyId dimension day instance: amount`. */
export async function heldLeases(
  kv: Deno.Kv,
  keyIds: string[],
  now: number,
  bound = 0,
): Promise<string[]> {
  const held: string[] = [];
  for (const id of keyIds) {
    for await (
      const entry of kv.list<{ amount: number; expires: number }>({
        prefix: keyLeasesPrefix(id),
      })
    ) {
      const { amount, expires } = entry.value ?? { amount: 0, expires: 0 };
      if (amount > bound && expires > now) {
        held.push(`${entry.key.slice(1).join(" ")}: ${amount}, ${expires - now} ms left`);
      }
    }
  }
  return held;
}

/** Reads the records, the keys and every aggregate. */
export async function readBooks(source: AccountingSource): Promise<Books> {
  const views = (["key", "model"] as const).flatMap((by) =>
    (["hour", "day"] as const).map((period) => ({ by, period }))
  );
  const [records, keys, ...rows] = await Promise.all([
    listAll<UsageRecord>(source, "/requests"),
    listAll<KeyView>(source, "/keys"),
    ...views.map(({ by, period }) =>
      adminJson<{ data: UsageRow[] }>(
        source,
        `/usage?by=${by}&group_by=${period}&from=${FAR_PAST}&to=${FAR_FUTURE}`,
      )
    ),
  ]) as [UsageRecord[], KeyView[], ...{ data: UsageRow[] }[]];
  return { records, keys, aggregates: views.map((view, i) => ({ ...view, rows: rows[i].data })) };
}

/** Every item of a paged admin listing. */
export async function listAll<T>(source: AccountingSource, path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: { data: T[]; next_cursor: string | null } = await adminJson(
      source,
      `${path}${path.includes("?") ? "&" : "?"}limit=500${
        cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""
      }`,
    );
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

async function adminJson<T>(source: AccountingSource, path: string): Promise<T> {
  const response = await source.admin("GET", path);
  const body = await response.json();
  assertEquals(response.status, 200, `GET ${path}: ${JSON.stringify(body)}`);
  return body as T;
}
