/**
 * The accounting invariant, read through the admin API of a live instance once traffic has
 * stopped. For every key, `used_tokens` (and today's counters) equal the sums of its ledger
 * records; no record is missing for a request the gateway admitted, and none exists twice; the
 * per-key index and the hour/day aggregates (per key and per model) agree with the records; the
 * records naming each backend match the answers it gave; and reservations have returned to the
 * bound README allows (0 once every instance is idle and dead instances' leases have expired).
 */
import { assert, assertEquals } from "../assert.ts";
import { utcDay } from "../../src/store/lease_keeper.ts";
import type { KeyView, UsageRecord, UsageRow } from "../../src/store/model.ts";
import { type AccountingSource, type Books, heldLeases, listAll, readBooks } from "./books.ts";

export type { AccountingSource };

/** What the test knows about one key's requests. */
export interface KeyExpectation {
  /** Requests the gateway admitted (past auth, limits and quota): each owes one ledger record. */
  answered: number;
  /** How many of those may have no record: requests in flight when their instance was killed. */
  mayBeLost?: number;
  /** The `x-request-id` of admitted requests that must each have a record (named if missing). */
  recorded?: string[];
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
  /** Records by how their request ended, and by the client's wire format. */
  outcomes: Record<string, number>;
  endpoints: Record<string, number>;
  /** Records of requests that another backend answered after a failure. */
  failovers: number;
}

const MAX_TOKENS_PER_REQUEST = 1_000_000_000;

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
  checkRecords(books.records);
  const grouped = groupBy(books.records, (r) => r.key_id);
  let lost = 0;
  for (const [id, key] of Object.entries(expect.keys)) {
    const records = grouped.get(id) ?? [];
    const ids = new Set(records.map((r) => r.request_id));
    const missing = (key.recorded ?? []).filter((requestId) => !ids.has(requestId));
    assertEquals(missing, [], `key ${id}: requests without a record`);
    lost += within(`key ${id}`, records.length, key);
  }
  const byBackend = groupBy(books.records, (r) => r.backend);
  for (const [name, backend] of Object.entries(expect.backends ?? {})) {
    within(`backend ${name}`, byBackend.get(name)?.length ?? 0, backend);
  }
  for (const view of books.keys) {
    checkKey(view, grouped.get(view.id) ?? [], expect.keys[view.id], utcDay(now()));
    assert(
      view.usage.reserved_tokens <= bound,
      `key ${view.id}: ${view.usage.reserved_tokens} tokens still reserved once traffic stopped`,
    );
  }
  if (source.kv) {
    const held = await heldLeases(source.kv, books.keys.map((k) => k.id), now(), bound);
    assertEquals(held, [], "leases still held once traffic stopped");
  }
  await checkIndex(source, Object.keys(expect.keys), grouped);
  const byModel = groupBy(books.records, (r) => r.model);
  for (const { by, period, rows } of books.aggregates) {
    checkAggregates(`by ${by} per ${period}`, rows, by === "key" ? grouped : byModel);
  }
  return {
    keys: books.keys.length,
    records: books.records.length,
    tokens: sum(books.records, (r) => r.total_tokens),
    answered: sum(Object.values(expect.keys), (k) => k.answered),
    lost,
    outcomes: countBy(books.records, (r) => r.outcome),
    endpoints: countBy(books.records, (r) => r.endpoint),
    failovers: books.records.filter((r) => r.attempts > 1).length,
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
  if (!source.kv) return true;
  return (await heldLeases(source.kv, books.keys.map((k) => k.id), now, bound)).length === 0;
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
  what: string,
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
  assertEquals(sorted(aggregates), sorted(fromRecords), `aggregates ${what}`);
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

function countBy<T>(items: T[], by: (item: T) => string): Record<string, number> {
  return Object.fromEntries([...groupBy(items, by)].map(([key, list]) => [key, list.length]));
}

function sum<T>(items: T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
