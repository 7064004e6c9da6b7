/**
 * The accounting invariant, read through the admin API of a live instance once traffic has
 * stopped. For every key, `used_tokens` (and today's counters) equal the sums of its ledger
 * records; no record is missing for a request the gateway admitted, and none exists twice; the
 * per-key index and the hour/day aggregates (per key and per model) agree with the records; the
 * records naming each backend match the answers it gave; and reservations have returned to the
 * bound README allows (0 once every instance is idle and dead instances' leases have expired).
 */
import { assert, assertEquals } from "../assert.ts";
import { keyLeasesPrefix } from "../../src/store/kv_keys.ts";
import { utcDay } from "../../src/store/lease_keeper.ts";
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

/** What the test knows about one key's requests. */
export interface KeyExpectation {
  /** Requests the gateway admitted (past auth, limits and quota): each owes one ledger record. */
  answered: number;
  /** How many of those may have no record: requests in flight when their instance was killed. */
  mayBeLost?: number;
  /** The key's usage was reset at this time (ms): only records ending later count toward it. */
  resetAt?: number;
  /** How far over its token budgets the key may end (usage beyond reservations); unchecked if absent. */
  overrun?: number;
}

/** What the test knows about one backend: the answers it gave (received, not refused). */
export interface BackendExpectation {
  answered: number;
  mayBeLost?: number;
}

/** What {@linkcode checkAccounting} compares the books with. */
export interface AccountingExpectations {
  keys: Record<string, KeyExpectation>;
  /** Records naming each backend, by name. */
  backends?: Record<string, BackendExpectation>;
  /** What a key's reservations may still hold once traffic stops (default 0). */
  reservedBound?: number;
  /** How long records and reservations may take to settle (default 20 s). */
  timeoutMs?: number;
}

/** What was checked, for reports. */
export interface AccountingReport {
  keys: number;
  records: number;
  tokens: number;
  answered: number;
  /** Admitted requests without a record (all within `mayBeLost`). */
  lost: number;
}

const FAR_PAST = "1970-01-01T00:00:00Z";
const FAR_FUTURE = "9999-12-31T00:00:00Z";
const MAX_TOKENS_PER_REQUEST = 1_000_000_000;

/** The books as the admin API shows them at one moment of quiet. */
interface Books {
  records: UsageRecord[];
  keys: KeyView[];
  byKey: UsageRow[];
  byModel: UsageRow[];
}

/** Asserts the accounting invariant; waits (bounded) for records and reservations to settle. */
export async function checkAccounting(
  source: AccountingSource,
  expect: AccountingExpectations,
): Promise<AccountingReport> {
  const now = source.now ?? Date.now;
  const bound = expect.reservedBound ?? 0;
  const deadline = Date.now() + (expect.timeoutMs ?? 20_000);
  let books = await readBooks(source);
  while (!(await settled(source, books, expect, bound, now())) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    books = await readBooks(source);
  }
  const grouped = groupBy(books.records, (r) => r.key_id);
  checkRecords(books.records);
  await checkIndex(source, Object.keys(expect.keys), grouped);
  for (const view of books.keys) {
    checkKey(view, grouped.get(view.id) ?? [], expect.keys[view.id], utcDay(now()));
    assert(view.usage.reserved_tokens <= bound, `key ${view.id}: reserved after traffic stopped`);
  }
  if (source.kv) assertEquals(await heldLeases(source.kv, books.keys, now()), [], "leases held");
  let lost = 0;
  for (const [id, key] of Object.entries(expect.keys)) {
    lost += within(`key ${id}`, grouped.get(id)?.length ?? 0, key);
  }
  const byBackend = groupBy(books.records, (r) => r.backend);
  for (const [name, backend] of Object.entries(expect.backends ?? {})) {
    within(`backend ${name}`, byBackend.get(name)?.length ?? 0, backend);
  }
  checkAggregates("key", books.byKey, grouped);
  checkAggregates("model", books.byModel, groupBy(books.records, (r) => r.model));
  return {
    keys: books.keys.length,
    records: books.records.length,
    tokens: sum(books.records, (r) => r.total_tokens),
    answered: sum(Object.values(expect.keys), (k) => k.answered),
    lost,
  };
}

/** Whether every owed record has arrived and every reservation has drained. */
async function settled(
  source: AccountingSource,
  books: Books,
  expect: AccountingExpectations,
  bound: number,
  now: number,
): Promise<boolean> {
  const counts = groupBy(books.records, (r) => r.key_id);
  for (const [id, key] of Object.entries(expect.keys)) {
    if ((counts.get(id)?.length ?? 0) < key.answered - (key.mayBeLost ?? 0)) return false;
  }
  if (books.keys.some((view) => view.usage.reserved_tokens > bound)) return false;
  return !source.kv || (await heldLeases(source.kv, books.keys, now)).length === 0;
}

/** Checks that `count` records exist for `answered` requests, at most `mayBeLost` fewer. */
function within(what: string, count: number, expected: BackendExpectation): number {
  const lost = expected.answered - count;
  assert(lost >= 0, `${what}: ${count} records for ${expected.answered} admitted requests`);
  assert(
    lost <= (expected.mayBeLost ?? 0),
    `${what}: ${lost} records missing, at most ${expected.mayBeLost ?? 0} may be`,
  );
  return lost;
}

/** Each record once, with sane whole counts and a total that is prompt plus completion. */
function checkRecords(records: UsageRecord[]): void {
  const ids = new Set<string>();
  for (const r of records) {
    assert(!ids.has(r.request_id), `request ${r.request_id} has two ledger records`);
    ids.add(r.request_id);
    for (const count of [r.prompt_tokens, r.completion_tokens, r.total_tokens]) {
      assert(
        Number.isSafeInteger(count) && count >= 0 && count <= MAX_TOKENS_PER_REQUEST,
        `request ${r.request_id}: token count ${count}`,
      );
    }
    assertEquals(r.total_tokens, r.prompt_tokens + r.completion_tokens, r.request_id);
  }
}

/** The per-key index (`/requests?key=`) lists exactly the key's records. */
async function checkIndex(
  source: AccountingSource,
  ids: string[],
  grouped: Map<string, UsageRecord[]>,
): Promise<void> {
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids.slice(i, i + 20).map(async (id) => {
        const indexed = await listAll<UsageRecord>(source, `/requests?key=${id}`);
        const expected = (grouped.get(id) ?? []).map((r) => r.request_id).sort();
        assertEquals(indexed.map((r) => r.request_id).sort(), expected, `key ${id}: index`);
      }),
    );
  }
}

/** A key's counters against its records; its budgets against its limits. */
function checkKey(
  view: KeyView,
  records: UsageRecord[],
  expected: KeyExpectation | undefined,
  today: string,
): void {
  const resetAt = expected?.resetAt ?? -Infinity;
  const charged = records.filter((r) => Date.parse(r.time) > resetAt);
  const { usage } = view;
  assertEquals(usage.used_tokens, sum(charged, (r) => r.total_tokens), `key ${view.id}: used`);
  // Daily counters take the day a request was admitted: unknown for one that spans midnight.
  const start = (r: UsageRecord) => utcDay(Date.parse(r.time) - r.latency_ms);
  if (charged.every((r) => (start(r) === today) === (utcDay(Date.parse(r.time)) === today))) {
    const todays = charged.filter((r) => start(r) === today);
    assertEquals(
      [usage.daily_tokens, usage.daily_requests],
      [sum(todays, (r) => r.total_tokens), todays.length],
      `key ${view.id}: today's tokens and requests`,
    );
  }
  if (view.daily_requests !== null && expected?.resetAt === undefined) {
    assert(usage.daily_requests <= view.daily_requests, `key ${view.id}: daily requests over`);
  }
  const overrun = expected?.overrun;
  if (overrun === undefined) return;
  if (view.quota_tokens !== null) {
    assert(usage.used_tokens <= view.quota_tokens + overrun, `key ${view.id}: over its quota`);
  }
  if (view.daily_tokens !== null) {
    assert(usage.daily_tokens <= view.daily_tokens + overrun, `key ${view.id}: over today's`);
  }
}

/** Every aggregate row summed per subject equals the sums of that subject's records. */
function checkAggregates(
  dimension: string,
  rows: UsageRow[],
  records: Map<string, UsageRecord[]>,
): void {
  const aggregates = new Map<string, number[]>();
  for (const row of rows) {
    const totals = aggregates.get(row.subject) ?? [0, 0, 0, 0, 0, 0];
    const values = [
      row.requests,
      row.prompt_tokens,
      row.completion_tokens,
      row.errors,
      Math.round(row.cost * 1_000_000),
      row.latency_ms_sum,
    ];
    aggregates.set(row.subject, totals.map((total, i) => total + values[i]));
  }
  const fromRecords = new Map<string, number[]>();
  for (const [subject, list] of records) {
    fromRecords.set(subject, [
      list.length,
      sum(list, (r) => r.prompt_tokens),
      sum(list, (r) => r.completion_tokens),
      list.filter((r) => r.outcome !== "completed").length,
      sum(list, (r) => Math.round(r.cost * 1_000_000)),
      sum(list, (r) => r.latency_ms),
    ]);
  }
  const sorted = (map: Map<string, number[]>) => [...map].sort(([a], [b]) => a < b ? -1 : 1);
  // requests, prompt, completion, errors, cost in micros, latency sum, per subject.
  assertEquals(sorted(aggregates), sorted(fromRecords), `aggregates by ${dimension}`);
}

/** Live leases that still hold something, as `keyId dimension day instance amount`. */
async function heldLeases(kv: Deno.Kv, keys: KeyView[], now: number): Promise<string[]> {
  const held: string[] = [];
  for (const { id } of keys) {
    for await (
      const entry of kv.list<{ amount: number; expires: number }>({
        prefix: keyLeasesPrefix(id),
      })
    ) {
      const { amount, expires } = entry.value ?? { amount: 0, expires: 0 };
      if (amount > 0 && expires > now) held.push(`${entry.key.slice(1).join(" ")} ${amount}`);
    }
  }
  return held;
}

async function readBooks(source: AccountingSource): Promise<Books> {
  const range = `group_by=day&from=${FAR_PAST}&to=${FAR_FUTURE}`;
  const [records, keys, byKey, byModel] = await Promise.all([
    listAll<UsageRecord>(source, "/requests"),
    listAll<KeyView>(source, "/keys"),
    adminJson<{ data: UsageRow[] }>(source, `/usage?by=key&${range}`),
    adminJson<{ data: UsageRow[] }>(source, `/usage?by=model&${range}`),
  ]);
  return { records, keys, byKey: byKey.data, byModel: byModel.data };
}

/** Every item of a paged admin listing. */
async function listAll<T>(source: AccountingSource, path: string): Promise<T[]> {
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

function groupBy<T>(items: T[], by: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = by(item);
    const list = groups.get(key);
    if (list) list.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

function sum<T>(items: T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
