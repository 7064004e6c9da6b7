/** Overview, Usage, Requests and Audit: read-only views of the admin API. */
import { signal } from "@preact/signals";
import type { Page, RequestRecord, UsageRow } from "./api.ts";
import { Bars, count, ms, Problem, Stat, Table } from "./parts.tsx";
import { useApi } from "./use_api.ts";

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
};
const EMPTY_ROW: UsageRow = {
  bucket: "",
  subject: "",
  requests: 0,
  prompt_tokens: 0,
  completion_tokens: 0,
  total_tokens: 0,
  errors: 0,
  cost: 0,
  latency_ms_sum: 0,
};

/** Overview: last 24 hours by hour and the latest requests, refreshed every 10 s. */
export function OverviewPage() {
  const from = new Date(Date.now() - 24 * 3600_000).toISOString();
  const usage = useApi<{ data: UsageRow[] }>(`/usage?group_by=hour&by=model&from=${from}`, 10_000);
  const recent = useApi<Page<RequestRecord>>("/requests?limit=200", 10_000);
  const rows = usage.data.value?.data ?? [];
  const byHour = new Map<string, UsageRow>();
  for (const row of rows) {
    const hour = byHour.get(row.bucket) ?? { ...row, requests: 0, total_tokens: 0, errors: 0 };
    hour.requests += row.requests;
    hour.total_tokens += row.total_tokens;
    hour.errors += row.errors;
    byHour.set(row.bucket, hour);
  }
  // Always 24 hourly slots, so an hour without traffic shows as an empty bar, not a gap.
  const hours = [...Array(24).keys()].map((i) => {
    const bucket = new Date(Date.now() - (23 - i) * 3600_000).toISOString().slice(0, 13);
    return byHour.get(bucket) ?? { ...EMPTY_ROW, bucket };
  });
  const records = recent.data.value?.data ?? [];
  const lastHour = records.filter((r) => Date.parse(r.time) > Date.now() - 3600_000);
  const total = (pick: (r: UsageRow) => number) => rows.reduce((sum, r) => sum + pick(r), 0);
  const requests = total((r) => r.requests);
  const byModel = new Map<string, number>();
  for (const row of rows) {
    byModel.set(row.subject, (byModel.get(row.subject) ?? 0) + row.total_tokens);
  }
  return (
    <section>
      <Problem message={usage.error.value ?? recent.error.value} />
      <div class="stats">
        <Stat label="requests (24 h)" value={count(requests)} />
        <Stat label="tokens (24 h)" value={count(total((r) => r.total_tokens))} />
        <Stat
          label="error rate (24 h)"
          value={requests ? `${((total((r) => r.errors) / requests) * 100).toFixed(1)}%` : "–"}
        />
        <Stat label="requests / min (last hour)" value={(lastHour.length / 60).toFixed(2)} />
        <Stat label="p50 latency" value={ms(percentile(records.map((r) => r.latency_ms), 0.5))} />
        <Stat label="p95 latency" value={ms(percentile(records.map((r) => r.latency_ms), 0.95))} />
        <Stat
          label="p50 time to first token"
          value={ms(percentile(records.flatMap((r) => r.ttft_ms ?? []), 0.5))}
        />
      </div>
      <Bars
        title="Requests per hour"
        points={hours.map((h) => ({ label: h.bucket.slice(11, 13) + ":00", value: h.requests }))}
      />
      <Bars
        title="Tokens per hour"
        points={hours.map((h) => ({
          label: h.bucket.slice(11, 13) + ":00",
          value: h.total_tokens,
        }))}
      />
      <h2>Top models (24 h)</h2>
      <Table
        head={["Model", "Tokens"]}
        rows={[...byModel].sort((a, b) => b[1] - a[1]).slice(0, 5).map((
          [model, tokens],
        ) => [model, count(tokens)])}
      />
    </section>
  );
}

const usageFilter = signal({ key: "", model: "", group: "", days: "7", by: "key" });

/** Usage: filters, a chart, a table and CSV export. */
export function UsagePage() {
  const f = usageFilter.value;
  const query = new URLSearchParams({
    group_by: "day",
    by: f.by,
    from: new Date(Date.now() - Number(f.days) * 86_400_000).toISOString(),
  });
  if (f.key) query.set("key", f.key);
  if (f.model) query.set("model", f.model);
  if (f.group) query.set("group", f.group);
  const { data, error } = useApi<{ data: UsageRow[] }>(`/usage?${query}`);
  const rows = data.value?.data ?? [];
  const set = (field: string) =>
  (
    e: Event,
  ) => (usageFilter.value = {
    ...usageFilter.value,
    [field]: (e.currentTarget as HTMLInputElement).value,
  });
  return (
    <section>
      <form class="grid filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Key id <input value={f.key} onChange={set("key")} />
        </label>
        <label>
          Model <input value={f.model} onChange={set("model")} />
        </label>
        <label>
          Group <input value={f.group} onChange={set("group")} />
        </label>
        <label>
          Period{" "}
          <select value={f.days} onChange={set("days")}>
            <option value="1">1 day</option>
            <option value="7">7 days</option>
            <option value="30">30 days</option>
          </select>
        </label>
        <label>
          Per{" "}
          <select value={f.by} onChange={set("by")}>
            <option value="key">key</option>
            <option value="model">model</option>
          </select>
        </label>
        <a
          class="button"
          href={`/admin/api/usage?${query}&format=csv`}
          download="modelgate-usage.csv"
        >
          Export CSV
        </a>
      </form>
      <Problem message={error.value} />
      <Bars
        title="Tokens per day"
        points={rows.map((r) => ({ label: r.bucket, value: r.total_tokens }))}
      />
      <Table
        head={[
          "Day",
          f.by === "key" ? "Key" : "Model",
          "Requests",
          "Prompt",
          "Completion",
          "Total",
          "Errors",
          "Cost",
        ]}
        rows={rows.map((
          r,
        ) => [
          r.bucket,
          r.name ?? r.subject,
          r.requests,
          r.prompt_tokens,
          r.completion_tokens,
          r.total_tokens,
          r.errors,
          r.cost.toFixed(4),
        ])}
      />
    </section>
  );
}

/** Requests: the per-request ledger, newest first. */
export function RequestsPage() {
  const { data, error } = useApi<Page<RequestRecord>>("/requests?limit=100", 10_000);
  return (
    <section>
      <Problem message={error.value} />
      <Table
        head={[
          "Time",
          "Key",
          "Model",
          "Backend",
          "Status",
          "Outcome",
          "Tokens",
          "Latency",
          "TTFT",
          "Client IP",
        ]}
        rows={(data.value?.data ?? []).map((r) => [
          r.time.replace("T", " ").slice(0, 19),
          r.key_id,
          r.model,
          r.backend,
          r.status,
          r.outcome,
          `${r.prompt_tokens} + ${r.completion_tokens}`,
          ms(r.latency_ms),
          ms(r.ttft_ms),
          r.client_ip,
        ])}
        empty="No requests yet"
      />
    </section>
  );
}

/** Audit log. */
export function AuditPage() {
  const { data, error } = useApi<
    Page<{ time: string; actor: string; action: string; target: string; detail: unknown }>
  >("/audit?limit=100");
  return (
    <section>
      <Problem message={error.value} />
      <Table
        head={["Time", "Actor", "Action", "Target", "Detail"]}
        rows={(data.value?.data ?? []).map((
          a,
        ) => [
          a.time.replace("T", " ").slice(0, 19),
          a.actor,
          a.action,
          a.target,
          <code key="detail">{JSON.stringify(a.detail)}</code>,
        ])}
      />
    </section>
  );
}
