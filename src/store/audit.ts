/** The audit log: who changed what, when; newest first. */
import { auditKey } from "./kv_keys.ts";
import type { AuditEntry, Page } from "./model.ts";
import { timeOrderedId } from "./secrets.ts";

/** Appends one entry. Details must never hold a key's plaintext or hash. */
export async function appendAudit(kv: Deno.Kv, entry: AuditEntry): Promise<void> {
  await kv.set(auditKey(timeOrderedId(Date.parse(entry.time))), entry);
}

/** Pages through the audit log, newest first. */
export async function listAudit(
  kv: Deno.Kv,
  options: { cursor?: string; limit?: number },
): Promise<Page<AuditEntry>> {
  const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
  const iterator = kv.list<AuditEntry>({ prefix: ["audit"] }, {
    cursor: options.cursor || undefined,
    reverse: true,
    limit,
  });
  const data: AuditEntry[] = [];
  for await (const entry of iterator) data.push(entry.value);
  return { data, next_cursor: data.length === limit ? iterator.cursor : null };
}
