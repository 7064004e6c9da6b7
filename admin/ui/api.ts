/** The UI's client of /admin/api: session cookie plus the page's CSRF token on writes. */

const app = document.getElementById("app")!;
const csrf = app.dataset.csrf ?? "";

/** An error the API answered with. */
export class ApiError extends Error {}

/** Calls the admin API; throws ApiError with the server's message. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`/admin/api${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(method === "GET" ? {} : { "x-csrf-token": csrf }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401) {
    location.href = "/admin/login";
    throw new ApiError("Session expired");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(data?.error?.message ?? `HTTP ${response.status}`);
  return data as T;
}

/** A page of a listing. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** A key as the admin API shows it. */
export interface KeyView {
  id: string;
  name: string;
  group: string;
  prefix: string;
  disabled: boolean;
  expires_at: string | null;
  quota_tokens: number | null;
  rpm: number | null;
  burst: number | null;
  tpm: number | null;
  allowed_ips: string[];
  allowed_models: string[];
  usage: { used_tokens: number; daily_requests: number };
}

/** One ledger record. */
export interface RequestRecord {
  request_id: string;
  time: string;
  key_id: string;
  model: string;
  backend: string;
  status: number;
  outcome: string;
  stream: boolean;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  latency_ms: number;
  ttft_ms: number | null;
  client_ip: string;
}

/** One row of a usage report. */
export interface UsageRow {
  bucket: string;
  subject: string;
  name?: string | null;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  errors: number;
  cost: number;
  latency_ms_sum: number;
}
