/** Deleting quota entries nothing reads any more; idempotent, so every instance may run it. */
import type { Logger } from "../log.ts";
import { LEGACY_BUDGET_PARTS, LEGACY_CLEARED } from "./kv_keys.ts";
import { utcDay } from "./lease_keeper.ts";

const DELETES_PER_COMMIT = 500;

/** Deletes every entry under `prefixes` that `stale` selects, in batches; returns how many. */
async function deleteWhere(
  kv: Deno.Kv,
  prefixes: Deno.KvKey[],
  stale: (key: Deno.KvKey) => boolean,
): Promise<number> {
  let op = kv.atomic();
  let count = 0;
  for (const prefix of prefixes) {
    for await (const entry of kv.list({ prefix })) {
      if (!stale(entry.key)) continue;
      op.delete(entry.key);
      if (++count % DELETES_PER_COMMIT === 0) {
        await op.commit();
        op = kv.atomic();
      }
    }
  }
  if (count % DELETES_PER_COMMIT !== 0) await op.commit();
  return count;
}

/**
 * Daily counters are KvU64 sums, which cannot carry an expiry; this deletes those (and the
 * version entries) of days before yesterday. Leases of old days expire on their own.
 */
export function sweepOldDays(kv: Deno.Kv, yesterday: string): Promise<number> {
  return deleteWhere(kv, [["quota_day"]], (key) => (key[2] as string) < yesterday);
}

/**
 * Versions before leases counted reservations in `reserved_added` / `reserved_released`; the
 * lease model ignores them. This deletes them once per KV (a marker records that it ran).
 */
export async function clearLegacyReservations(kv: Deno.Kv): Promise<number> {
  if ((await kv.get(LEGACY_CLEARED)).versionstamp !== null) return 0;
  const legacy = (key: Deno.KvKey) => LEGACY_BUDGET_PARTS.includes(key[key.length - 1] as string);
  const count = await deleteWhere(kv, [["quota"], ["quota_day"]], legacy);
  await kv.set(LEGACY_CLEARED, new Date().toISOString());
  return count;
}

/**
 * What the quota broker runs with each flush: once a day, deleting old daily counters; once per
 * start, the legacy reservation counters. Both run in the background; failures are logged.
 */
export function createHousekeeping(kv: Deno.Kv, log: Logger): (now: number) => void {
  let sweptDay = "";
  let legacyCleared = false;
  const warn = (what: string) => (err: Error) => {
    log.warn(`${what} failed`, { error: err.message });
  };
  return function housekeeping(now) {
    const today = utcDay(now);
    if (today !== sweptDay) {
      sweptDay = today;
      sweepOldDays(kv, utcDay(now - 86_400_000)).catch(warn("sweeping old daily counters"));
    }
    if (!legacyCleared) {
      legacyCleared = true;
      clearLegacyReservations(kv).then((count) => {
        if (count > 0) log.info("deleted reservation counters of an earlier version", { count });
      }).catch(warn("deleting legacy reservation counters"));
    }
  };
}
