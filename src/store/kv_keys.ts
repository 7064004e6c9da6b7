/** Every Deno KV key ModelGate uses, built in one place. */

/** The primary record of an API key. */
export const keyRecordKey = (id: string): Deno.KvKey => ["keys", id];
/** Pointer from a key's hash to its id (never a copy of the record). */
export const keyByHashKey = (hash: string): Deno.KvKey => ["keys_by_hash", hash];
/** Prefix of all hash pointers. */
export const KEYS_BY_HASH: Deno.KvKey = ["keys_by_hash"];
/** Prefix of all key records. */
export const KEYS: Deno.KvKey = ["keys"];
/** Bumped on every key change, so instances know to refresh their hash index. */
export const KEYS_VERSION: Deno.KvKey = ["meta", "keys_version"];
/** Prefix of the recent key changes: which key ids and hashes each change touched. */
export const KEY_CHANGES: Deno.KvKey = ["meta", "key_changes"];
/** One entry of the key change log. */
export const keyChangeKey = (id: string): Deno.KvKey => ["meta", "key_changes", id];
/** Hash of the generated admin key (when the config sets none). */
export const ADMIN_KEY_HASH: Deno.KvKey = ["meta", "admin_key_hash"];
/** Which budget a counter belongs to. */
export type BudgetDimension = "tokens" | "day_tokens" | "day_requests";
/**
 * Parts of a budget: `used`, a KvU64 that only grows (usage is flushed with `.sum()` and never
 * conflicts), and `version`, bumped by every change of the budget's leases, which each such
 * change checks: lease changes of all instances are serialised through it.
 */
export type BudgetPart = "used" | "version";
/** One budget entry (lifetime budgets under ["quota"], daily ones under ["quota_day"]). */
export const budgetKey = (
  id: string,
  dimension: BudgetDimension,
  day: string | null,
  part: BudgetPart,
): Deno.KvKey =>
  day === null ? ["quota", id, dimension, part] : ["quota_day", id, day, dimension, part];
/** Prefix of all lifetime counters of a key. */
export const quotaPrefix = (id: string): Deno.KvKey => ["quota", id];
/** Prefix of all daily counters of a key for one day. */
export const dailyPrefix = (id: string, day: string): Deno.KvKey => ["quota_day", id, day];
/**
 * What one instance holds of a budget: `{ amount, expires }`, renewed while it lives. The
 * lifetime budget's day is "".
 */
export const leaseKey = (
  id: string,
  dimension: BudgetDimension,
  day: string | null,
  instance: string,
): Deno.KvKey => ["quota_lease", id, dimension, day ?? "", instance];
/** Prefix of every instance's lease of one budget. */
export const leasePrefix = (
  id: string,
  dimension: BudgetDimension,
  day: string | null,
): Deno.KvKey => ["quota_lease", id, dimension, day ?? ""];
/** Prefix of every lease of a key. */
export const keyLeasesPrefix = (id: string): Deno.KvKey => ["quota_lease", id];
/**
 * Reservation counters of versions before leases (`reserved_added`, `reserved_released`, the last
 * part of a budget key): ignored, and deleted once by {@linkcode LEGACY_CLEARED}'s migration.
 */
export const LEGACY_BUDGET_PARTS: readonly string[] = ["reserved_added", "reserved_released"];
/** Set once the legacy reservation counters are deleted. */
export const LEGACY_CLEARED: Deno.KvKey = ["meta", "quota_legacy_reservations_cleared"];
/** A raw usage record, ordered by time. */
export const usageKey = (seq: string): Deno.KvKey => ["usage", seq];
/** Per-key pointer to a usage record. */
export const usageByKeyKey = (
  keyId: string,
  seq: string,
): Deno.KvKey => ["usage_by_key", keyId, seq];
/** One aggregate counter: period, dimension, subject, bucket, metric. */
export const aggregateKey = (
  period: "hour" | "day",
  dimension: "key" | "model",
  subject: string,
  bucket: string,
  metric: string,
): Deno.KvKey => ["agg", period, dimension, subject, bucket, metric];
/** An audit entry, ordered by time. */
export const auditKey = (seq: string): Deno.KvKey => ["audit", seq];
