/** The CLI's client of the admin REST API: one request, one clear failure message. */

/** A failure the CLI reports as one line and a non-zero exit. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

/** Where and how the CLI reaches the gateway. */
export interface AdminTarget {
  url: string;
  adminKey: string | null;
  fetch?: typeof fetch;
}

/** Calls `/admin/api{path}` and returns the parsed JSON (or text for CSV). */
export async function adminRequest(
  target: AdminTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  if (!target.adminKey) {
    throw new CliError(
      "No admin key: pass --admin-key, set MODELGATE_ADMIN_KEY, or set admin.api_key in the config",
      2,
    );
  }
  const url = `${target.url.replace(/\/+$/, "")}/admin/api${path}`;
  let response: Response;
  try {
    response = await (target.fetch ?? fetch)(url, {
      method,
      headers: {
        authorization: `Bearer ${target.adminKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(`Cannot reach ModelGate at ${target.url}: ${(err as Error).message}`);
  }
  const type = response.headers.get("content-type") ?? "";
  const payload = type.includes("application/json")
    ? await response.json().catch(() => null)
    : await response.text();
  if (!response.ok) {
    const message = (payload as { error?: { message?: string } } | null)?.error?.message ??
      `HTTP ${response.status}`;
    if (response.status === 401) throw new CliError(`Admin key refused: ${message}`);
    throw new CliError(message);
  }
  return payload;
}
