/** Shared test plumbing: a gateway on a free loopback port built from YAML text. */
import OpenAI from "openai";
import { parseConfig } from "../src/config.ts";
import { createLogger, type Logger } from "../src/log.ts";
import { type RunningGateway, startGateway } from "../src/server.ts";

/** The admin key of every test gateway. */
export const ADMIN_KEY = "test-admin-key-0123456789";

/** A gateway started for one test, with its captured log lines and a ready API key. */
export interface TestGateway extends RunningGateway {
  logs: string[];
  /** An unlimited API key created at start. */
  apiKey: string;
  /** Headers carrying {@linkcode TestGateway.apiKey}, for raw fetch calls. */
  auth: Record<string, string>;
  client(apiKey?: string, options?: { maxRetries?: number }): OpenAI;
  /** Calls the admin API with the admin key. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  /** Creates a key through the admin API and returns its plaintext and id. */
  createKey(fields?: Record<string, unknown>): Promise<{ key: string; id: string }>;
}

/** Options for {@linkcode startTestGateway}. */
export interface TestGatewayOptions {
  env?: Record<string, string>;
  now?: () => number;
  /** A KV handle shared with other test gateways (as instances share a remote KV). */
  kv?: Deno.Kv;
  /** The router's random source, to make tie-breaks between equal backends predictable. */
  random?: () => number;
}

/** Starts a gateway from YAML (127.0.0.1, free port, KV in memory unless the YAML says so). */
export async function startTestGateway(
  yaml: string,
  options: TestGatewayOptions = {},
): Promise<TestGateway> {
  const env = options.env ?? {};
  const config = parseConfig(yaml, (name) => env[name]);
  config.server.host = "127.0.0.1";
  config.server.port = 0;
  if (!/^\s*storage:/m.test(yaml)) config.storage.kv = ":memory:";
  config.admin.apiKey ??= ADMIN_KEY;
  config.discovery.intervalSeconds = 0;
  // Background probes would add requests the fakes count; tests that want them configure them.
  if (!/^\s*health:/m.test(yaml)) config.routing.health.intervalSeconds = 0;
  const logs: string[] = [];
  const log: Logger = createLogger("debug", (line) => logs.push(line));
  const gateway = await startGateway({
    config,
    log,
    now: options.now,
    kv: options.kv,
    routingRandom: options.random,
    print: (line) => logs.push(line),
  });
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${gateway.url}/admin/api${path}`, {
      method,
      headers: {
        authorization: `Bearer ${config.admin.apiKey}`,
        "content-type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const createKey = async (fields: Record<string, unknown> = {}) => {
    const response = await admin("POST", "/keys", { name: "test", ...fields });
    const created = await response.json();
    if (response.status !== 201) throw new Error(`key creation failed: ${JSON.stringify(created)}`);
    return { key: created.key as string, id: created.record.id as string };
  };
  const { key: apiKey } = await createKey({ name: "default-test-key", rpm: null, burst: null });
  return {
    ...gateway,
    logs,
    apiKey,
    auth: { authorization: `Bearer ${apiKey}` },
    admin,
    createKey,
    client(key = apiKey, clientOptions = {}) {
      return new OpenAI({
        apiKey: key,
        baseURL: `${gateway.url}/v1`,
        maxRetries: clientOptions.maxRetries ?? 0,
        timeout: 10_000,
      });
    },
  };
}

/** Reads an SSE body into its `data:` payloads. */
export async function readSse(response: Response): Promise<string[]> {
  const text = await response.text();
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
}

/** Waits until `check` is true, polling every 10 ms, for at most `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
