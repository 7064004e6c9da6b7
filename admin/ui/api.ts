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

export type { KeyView, Page, UsageRow } from "../../src/store/model.ts";
/** One ledger record, as the Requests page shows it. */
export type { UsageRecord as RequestRecord } from "../../src/store/model.ts";
/** A backend and a model as the Backends page shows them. */
export type { BackendView, ModelView } from "../../src/routing/types.ts";
