/** The Keys page: search, page, create (shown once), edit limits, disable, rotate, delete. */
import { signal } from "@preact/signals";
import { api, type KeyView, type Page } from "./api.ts";
import { count, Problem, Table } from "./parts.tsx";

const keysSig = signal<KeyView[]>([]);
const cursorSig = signal<string | null>(null);
const searchSig = signal("");
const errorSig = signal<string | null>(null);
const createdSig = signal<{ key: string; name: string } | null>(null);
const editingSig = signal<KeyView | null>(null);
let started = false;

async function load(cursor: string | null = null) {
  try {
    const query = new URLSearchParams({ limit: "25" });
    if (searchSig.value) query.set("search", searchSig.value);
    if (cursor) query.set("cursor", cursor);
    const page = await api<Page<KeyView>>("GET", `/keys?${query}`);
    keysSig.value = cursor ? [...keysSig.value, ...page.data] : page.data;
    cursorSig.value = page.next_cursor;
    errorSig.value = null;
  } catch (err) {
    errorSig.value = (err as Error).message;
  }
}

const numberOrNull = (value: FormDataEntryValue | null) =>
  value === null || String(value).trim() === "" ? null : Number(value);
const list = (value: FormDataEntryValue | null) =>
  String(value ?? "").split(",").map((s) => s.trim()).filter(Boolean);

async function create(event: Event) {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  try {
    const expires = String(form.get("expires_at") ?? "");
    const created = await api<{ key: string; record: KeyView }>("POST", "/keys", {
      name: String(form.get("name") ?? ""),
      group: String(form.get("group") ?? "") || undefined,
      quota_tokens: numberOrNull(form.get("quota_tokens")),
      rpm: numberOrNull(form.get("rpm")),
      allowed_models: list(form.get("allowed_models")),
      allowed_ips: list(form.get("allowed_ips")),
      expires_at: expires ? new Date(expires).toISOString() : null,
    });
    createdSig.value = { key: created.key, name: created.record.name };
    (event.target as HTMLFormElement).reset();
    await load();
  } catch (err) {
    errorSig.value = (err as Error).message;
  }
}

async function act(run: () => Promise<unknown>) {
  try {
    await run();
    await load();
  } catch (err) {
    errorSig.value = (err as Error).message;
  }
}

async function saveEdit(event: Event) {
  event.preventDefault();
  const key = editingSig.value!;
  const form = new FormData(event.target as HTMLFormElement);
  await act(() =>
    api("PATCH", `/keys/${encodeURIComponent(key.id)}`, {
      rpm: numberOrNull(form.get("rpm")),
      burst: numberOrNull(form.get("burst")),
      tpm: numberOrNull(form.get("tpm")),
      quota_tokens: numberOrNull(form.get("quota_tokens")),
      allowed_models: list(form.get("allowed_models")),
      allowed_ips: list(form.get("allowed_ips")),
    })
  );
  editingSig.value = null;
}

function QuotaBar(props: { used: number; total: number | null }) {
  if (props.total === null) return <span>{count(props.used)} / ∞</span>;
  const share = Math.min(100, (props.used / Math.max(1, props.total)) * 100);
  return (
    <span class="quota">
      <meter min={0} max={100} value={share} aria-label="Quota used" /> {count(props.used)} /{" "}
      {count(props.total)}
    </span>
  );
}

/** The Keys island. */
export function KeysPage() {
  if (!started) {
    started = true;
    load();
  }
  const created = createdSig.value;
  const editing = editingSig.value;
  return (
    <section>
      <Problem message={errorSig.value} />
      {created && (
        <div class="shown-once" role="status">
          <p>
            <strong>New key for {created.name}.</strong>{" "}
            Copy it now: it is shown only once and cannot be recovered.
          </p>
          <code id="new-key">{created.key}</code>
          <button type="button" onClick={() => navigator.clipboard?.writeText(created.key)}>
            Copy
          </button>
          <button type="button" class="link" onClick={() => (createdSig.value = null)}>Done</button>
        </div>
      )}
      <details class="panel">
        <summary>Create a key</summary>
        <form onSubmit={create} class="grid">
          <label>
            Name <input name="name" required />
          </label>
          <label>
            Group <input name="group" placeholder="default" />
          </label>
          <label>
            Token quota <input name="quota_tokens" type="number" min="0" placeholder="unlimited" />
          </label>
          <label>
            Requests per minute <input name="rpm" type="number" min="0" placeholder="default" />
          </label>
          <label>
            Models (comma-separated, * allowed) <input name="allowed_models" placeholder="*" />
          </label>
          <label>
            IP allowlist (CIDRs) <input name="allowed_ips" placeholder="any" />
          </label>
          <label>
            Expires <input name="expires_at" type="date" />
          </label>
          <button type="submit">Create key</button>
        </form>
      </details>
      {editing && (
        <form onSubmit={saveEdit} class="panel grid" aria-label={`Edit ${editing.name}`}>
          <h2>Edit {editing.name}</h2>
          <label>
            Requests per minute <input name="rpm" type="number" min="0" value={editing.rpm ?? ""} />
          </label>
          <label>
            Burst <input name="burst" type="number" min="0" value={editing.burst ?? ""} />
          </label>
          <label>
            Tokens per minute <input name="tpm" type="number" min="0" value={editing.tpm ?? ""} />
          </label>
          <label>
            Token quota{" "}
            <input name="quota_tokens" type="number" min="0" value={editing.quota_tokens ?? ""} />
          </label>
          <label>
            Models <input name="allowed_models" value={editing.allowed_models.join(", ")} />
          </label>
          <label>
            IP allowlist <input name="allowed_ips" value={editing.allowed_ips.join(", ")} />
          </label>
          <button type="submit">Save</button>
          <button type="button" class="link" onClick={() => (editingSig.value = null)}>
            Cancel
          </button>
        </form>
      )}
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          load();
        }}
      >
        <label>
          Search{" "}
          <input
            type="search"
            value={searchSig.value}
            onInput={(e) => (searchSig.value = e.currentTarget.value)}
          />
        </label>
      </form>
      <Table
        head={["Name", "Prefix", "Group", "Quota", "RPM", "Status", "Expires", "Actions"]}
        rows={keysSig.value.map((key) => [
          key.name,
          <code key="prefix">{key.prefix}…</code>,
          key.group,
          <QuotaBar key="quota" used={key.usage.used_tokens} total={key.quota_tokens} />,
          count(key.rpm),
          key.disabled ? "disabled" : "active",
          key.expires_at?.slice(0, 10) ?? "never",
          <span key="actions" class="actions">
            <button type="button" onClick={() => (editingSig.value = key)}>Edit</button>
            <button
              type="button"
              onClick={() =>
                act(() => api("PATCH", `/keys/${key.id}`, { disabled: !key.disabled }))}
            >
              {key.disabled ? "Enable" : "Disable"}
            </button>
            <button
              type="button"
              onClick={() =>
                act(async () => {
                  const rotated = await api<{ key: string; record: KeyView }>(
                    "POST",
                    `/keys/${key.id}/rotate`,
                    {},
                  );
                  createdSig.value = { key: rotated.key, name: rotated.record.name };
                })}
            >
              Rotate
            </button>
            <button
              type="button"
              class="danger"
              onClick={() => confirm(`Delete key "${key.name}"? Clients using it stop working.`) &&
                act(() => api("DELETE", `/keys/${key.id}`))}
            >
              Delete
            </button>
          </span>,
        ])}
        empty="No keys yet: create one above"
      />
      {cursorSig.value && (
        <button type="button" onClick={() => load(cursorSig.value)}>Load more</button>
      )}
    </section>
  );
}
