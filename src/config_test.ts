import { assert, assertEquals } from "../tests/assert.ts";
import { ConfigError, parseConfig } from "./config.ts";

const noEnv = () => undefined;

function configError(yaml: string, env: (name: string) => string | undefined = noEnv): string {
  try {
    parseConfig(yaml, env);
  } catch (err) {
    assert(err instanceof ConfigError, String(err));
    return err.message;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("parseConfig() accepts the quick-start form as written", () => {
  const config = parseConfig(
    `server:
  port: 8080
admin:
  api_key: "your-admin-key"
adapters:
  ollama:
    base_url: http://localhost:11434
  vllm:
    base_url: http://localhost:8000
`,
    noEnv,
  );
  assertEquals(config.server.port, 8080);
  assertEquals(config.admin.apiKey, "your-admin-key");
  assertEquals(config.backends.map((b) => [b.name, b.type, b.baseUrl]), [
    ["ollama", "ollama", "http://localhost:11434"],
    ["vllm", "vllm", "http://localhost:8000"],
  ]);
  assertEquals(config.backends[0].models, null);
});

Deno.test("parseConfig() reads the fuller form with backends and model policy", () => {
  const config = parseConfig(
    `server:
  host: 127.0.0.1
  trusted_proxies: [10.0.0.0/8]
  max_body_bytes: 4096
storage:
  kv: ":memory:"
redis:
  url: redis://127.0.0.1:6379
  on_error: closed
backends:
  - name: gpu-1
    type: vllm
    base_url: http://10.0.0.5:8000/
    models: [llama]
    weight: 3
    timeouts: { idle_ms: 10 }
  - name: api3
    type: openai_compatible
    base_url: https://api.example.com/v1
    api_key: k
    auth_header: x-api-key
    auth_prefix: ""
models:
  llama:
    aliases: [default]
    fallbacks: [gpt]
    price: { input: 0.5, output: 1.5 }
`,
    noEnv,
  );
  assertEquals(config.server.trustedProxies, ["10.0.0.0/8"]);
  assertEquals(config.redis, { url: "redis://127.0.0.1:6379", onError: "closed" });
  assertEquals(config.backends[0].baseUrl, "http://10.0.0.5:8000");
  assertEquals(config.backends[0].weight, 3);
  assertEquals(config.backends[0].timeouts.idleMs, 10);
  assertEquals(config.backends[0].timeouts.firstByteMs, 300_000);
  assertEquals(config.backends[1].authHeader, "x-api-key");
  assertEquals(config.backends[1].authPrefix, "");
  assertEquals(config.models.llama, {
    aliases: ["default"],
    fallbacks: ["gpt"],
    price: { input: 0.5, output: 1.5 },
  });
});

Deno.test("parseConfig() substitutes ${NAME} and ${NAME:-default} in values", () => {
  const env = (name: string) => ({ PORT: "9090", KEY: "secret" } as Record<string, string>)[name];
  const config = parseConfig(
    `server:
  port: \${PORT}
admin:
  api_key: "\${KEY}"
adapters:
  ollama:
    base_url: \${OLLAMA:-http://gpu:11434}
`,
    env,
  );
  assertEquals(config.server.port, 9090);
  assertEquals(config.admin.apiKey, "secret");
  assertEquals(config.backends[0].baseUrl, "http://gpu:11434");
});

Deno.test("parseConfig() errors name the path in the file", () => {
  assertEquals(
    configError(
      "backends:\n  - {name: a, type: vllm, base_url: http://x}\n  - {name: b, type: vllm, base_url: ftp://x}\n",
    ),
    'Invalid config at "backends[1].base_url": expected an http(s) URL',
  );
  assertEquals(
    configError("server:\n  port: 70000\n"),
    'Invalid config at "server.port": expected a number from 0 to 65535',
  );
  assertEquals(
    configError("backends:\n  - {name: a, type: nosuch}\n"),
    'Invalid config at "backends[0].type": expected one of: openai, vllm, llamacpp, openai_compatible, ollama',
  );
  assertEquals(
    configError("adapters:\n  ollama:\n    base-url: http://x\n"),
    'Invalid config at "adapters.ollama.base-url": unknown setting (expected one of: name, type, base_url, api_key, auth_header, auth_prefix, models, weight, max_concurrency, timeouts, headers, responses)',
  );
  assertEquals(
    configError("admin:\n  api_key: ${MISSING}\n"),
    'Invalid config at "admin.api_key": environment variable "MISSING" is not set',
  );
  assertEquals(
    configError("backends:\n  - {name: a, type: vllm}\n  - {name: a, type: vllm}\n"),
    'Invalid config at "backends[1].name": "a" is used twice',
  );
  assert(configError("server: [1, 2\n").startsWith("Invalid config: the file is not valid YAML"));
});

Deno.test("parseConfig() takes exact browser origins only: no wildcard, path or other scheme", () => {
  const origins = (list: string) =>
    parseConfig(`server:\n  cors:\n    allowed_origins: ${list}\n`, noEnv).server.corsOrigins;
  assertEquals(origins('["https://app.example.com", "http://localhost:5173"]'), [
    "https://app.example.com",
    "http://localhost:5173",
  ]);
  for (
    const bad of [
      '"*"',
      '"https://*.example.com"',
      '"https://app.example.com/"',
      '"https://app.example.com/path"',
      '"null"',
      '"file:///tmp"',
      '"chrome-extension://abc"',
      '"app.example.com"',
    ]
  ) {
    assertEquals(
      configError(`server:\n  cors:\n    allowed_origins: ["https://ok.example.com", ${bad}]\n`),
      'Invalid config at "server.cors.allowed_origins[1]": expected an origin such as "https://app.example.com" (no path, no wildcard)',
      bad,
    );
  }
});

Deno.test("parseConfig() does not let an environment value change the document's structure", () => {
  const env = (name: string) => (name === "EVIL" ? "x\nadmin:\n  api_key: pwned" : undefined);
  const config = parseConfig('server: { host: "${EVIL}" }\n', env);
  assertEquals(config.admin.apiKey, null);
  assertEquals(config.server.host, "x\nadmin:\n  api_key: pwned");
});

Deno.test("parseConfig() accepts the shipped configs/config.yaml with an empty environment", async () => {
  const text = await Deno.readTextFile(new URL("../configs/config.yaml", import.meta.url));
  const config = parseConfig(text, noEnv);
  assertEquals(config.server.port, 8080);
  assertEquals(config.admin.apiKey, null);
  assertEquals(config.storage.kv, "./data/modelgate.kv");
  assertEquals(config.backends.map((b) => b.type), ["ollama"]);
});
