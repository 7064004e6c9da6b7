/** ModelGate's command line: `serve` (the default) runs the gateway; other commands manage it. */
import { parseArgs } from "node:util";
import { CLI_COMMANDS, runCli } from "./src/cli/main.ts";
import { ConfigError, loadConfig } from "./src/config.ts";
import { createLogger, flushLogs, type LogLevel } from "./src/log.ts";
import { startGateway } from "./src/server.ts";

const USAGE = `ModelGate: an OpenAI-compatible gateway for self-hosted and cloud LLMs

Usage:
  modelgate [serve] [--config PATH] [--log-level debug|info|warn|error]
  modelgate key create -n NAME [-q QUOTA] [-r RPM] [--burst N] [--tpm N] [--daily-tokens N]
                       [--daily-requests N] [--max-concurrency N] [--ips CIDR,...]
                       [--models GLOB,...] [--default-model M] [--group G]
                       [--expires 30d|DATE|never] [--metadata k=v]
  modelgate key list [--search TEXT] [--limit N] [--cursor C]
  modelgate key show|disable|enable|delete|reset-usage ID
  modelgate key update ID [limit flags as for create]
  modelgate key rotate ID [--grace 1h]
  modelgate usage [--key ID] [--model M] [--group G] [--since 24h] [--by day|hour] [--csv]
  modelgate models
  modelgate backends

Options:
  -c, --config PATH     config file (default: $MODELGATE_CONFIG or configs/config.yaml)
  --url URL             gateway for management commands (default: $MODELGATE_URL or the config)
  --admin-key KEY       admin key (default: $MODELGATE_ADMIN_KEY or admin.api_key in the config)
  --json                machine-readable output of management commands
  -h, --help            show this help

Exit codes: 0 success, 1 failure (unreachable, refused, unknown id), 2 invalid usage or config.
`;

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const level = (values["log-level"] ?? Deno.env.get("MODELGATE_LOG_LEVEL") ?? "info") as LogLevel;
  const log = createLogger(level);
  const chosen = values.config ?? Deno.env.get("MODELGATE_CONFIG");
  let path = chosen ?? "configs/config.yaml";
  if (!chosen && !(await exists(path))) {
    // A compiled binary started elsewhere: use the example config embedded in it.
    path = new URL("./configs/config.yaml", import.meta.url).pathname;
    log.info("no configs/config.yaml here: using the built-in default config");
  }
  let config;
  try {
    config = await loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`modelgate: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const gateway = await startGateway({ config, log });
  log.info("modelgate listening", {
    url: gateway.url,
    backends: config.backends.map((b) => `${b.name} (${b.type})`),
  });
  const stop = () => {
    log.info("shutting down: draining in-flight requests");
    gateway.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await gateway.finished;
  await gateway.shutdown();
  log.info("modelgate stopped");
  return 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (
    command === undefined || (command.startsWith("-") && command !== "-h" && command !== "--help")
  ) {
    return await serve(args);
  }
  if (command === "serve") return await serve(rest);
  if ((CLI_COMMANDS as readonly string[]).includes(command)) return await runCli(args);
  if (command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return 0;
  }
  console.error(`modelgate: unknown command "${command}" (try "modelgate help")`);
  return 2;
}

if (import.meta.main) {
  try {
    const code = await main(Deno.args);
    flushLogs();
    Deno.exit(code);
  } catch (err) {
    console.error(`modelgate: ${err instanceof Error ? err.message : String(err)}`);
    flushLogs();
    Deno.exit(1);
  }
}
