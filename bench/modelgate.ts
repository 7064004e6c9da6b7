/** Starts ModelGate for a benchmark case: its own config, KV file and key, full pipeline on. */
import { KeyStore } from "../src/store/key_store.ts";
import { UNLIMITED_DEFAULTS } from "../src/store/model.ts";
import { freePort } from "./lib.ts";

/** A ModelGate process under test. */
export interface BenchGateway {
  url: string;
  key: string;
  pid: number;
  /** One value of the gateway's /metrics (a metric without labels), or NaN. */
  metric(name: string): Promise<number>;
  stop(): Promise<void>;
}

const ADMIN_KEY = "bench-admin-key";

/** A key with every limit on (quota, daily budgets, rates, allowlists), none ever reached. */
export const FULL_PIPELINE_LIMITS: Readonly<Record<string, unknown>> = Object.freeze({
  quota_tokens: 1e15,
  daily_tokens: 1e15,
  daily_requests: 1e12,
  rpm: 1e9,
  burst: 1e8,
  tpm: 1e12,
  max_concurrency: 1e6,
  allowed_ips: ["127.0.0.1/32"],
  allowed_models: ["bench-*"],
});

/** Options for {@linkcode startModelGate}. */
export interface BenchGatewayOptions {
  backendUrl: string;
  dir: string;
  /** Extra keys stored before start, to show lookups do not grow with the key count. */
  keyCount: number;
  /** Limits of the benchmark key; default: every limit on and never reached. */
  limits?: Record<string, unknown>;
  redisUrl?: string;
  /** More backends serving bench-model, named bench-2, bench-3, ... */
  extraBackendUrls?: string[];
  /** YAML appended to the config, e.g. a `routing:` section. */
  extraConfig?: string;
  /** More models configured beside `bench-model` (each with an alias and a price). */
  extraModels?: number;
}

function extraModelNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `extra-model-${i}`);
}

function extraModelPolicies(count: number): string {
  if (count === 0) return "";
  const lines = extraModelNames(count).map((name) =>
    `  ${name}:\n    aliases: [${name}-alias]\n    price: { input: 1, output: 2 }`
  );
  return `models:\n${lines.join("\n")}\n`;
}

/** Writes the config, seeds the KV, starts `main.ts serve` and creates the benchmark key. */
export async function startModelGate(options: BenchGatewayOptions): Promise<BenchGateway> {
  await Deno.mkdir(options.dir, { recursive: true });
  const kvPath = `${options.dir}/modelgate.kv`;
  if (options.keyCount > 0) {
    const kv = await Deno.openKv(kvPath);
    const store = new KeyStore({ kv });
    for (let i = 0; i < options.keyCount; i++) {
      await store.create({ name: `seed-${i}` }, UNLIMITED_DEFAULTS);
    }
    kv.close();
  }
  const port = freePort();
  const config = `${options.dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    `server:
  host: 127.0.0.1
  port: ${port}
admin:
  api_key: ${ADMIN_KEY}
storage:
  kv: ${kvPath}
${options.redisUrl ? `redis:\n  url: ${options.redisUrl}\n` : ""}discovery:
  interval_seconds: 0
backends:
  - name: bench
    type: vllm
    base_url: ${options.backendUrl}
    models: [bench-model${extraModelNames(options.extraModels ?? 0).map((m) => `, ${m}`).join("")}]
${
      (options.extraBackendUrls ?? []).map((url, i) =>
        `  - { name: bench-${i + 2}, type: vllm, base_url: "${url}", models: [bench-model] }\n`
      ).join("")
    }${extraModelPolicies(options.extraModels ?? 0)}${options.extraConfig ?? ""}`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    // At the default level, so the access line of every request is part of what is measured.
    args: ["run", "--allow-all", "main.ts", "serve", "--config", config, "--log-level", "info"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Access lines are read and dropped; warnings and errors are shown.
  (async () => {
    let rest = "";
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + text).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.includes('"level":"info"')) console.error(line);
      }
    }
  })().catch(() => {});
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      const response = await fetch(`${url}/healthz`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error("ModelGate did not start");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const response = await fetch(`${url}/admin/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({
      name: "bench",
      ...(options.limits ?? FULL_PIPELINE_LIMITS),
    }),
  });
  const created = await response.json();
  if (response.status !== 201) throw new Error(`key creation failed: ${JSON.stringify(created)}`);
  return {
    url,
    key: created.key,
    pid: child.pid,
    async metric(name: string) {
      const text = await (await fetch(`${url}/metrics`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      })).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      return line ? Number(line.slice(name.length + 1)) : NaN;
    },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
