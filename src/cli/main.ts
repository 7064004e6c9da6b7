/** The management commands of the `modelgate` binary; they talk to the admin REST API. */
import { loadConfig } from "../config.ts";
import { type AdminTarget, CliError } from "./client.ts";
import { keyCommand } from "./key.ts";
import { backendsCommand, modelsCommand, usageCommand } from "./reports.ts";

/** Commands this module handles. */
export const CLI_COMMANDS = ["key", "usage", "models", "backends"] as const;

const GLOBAL_FLAGS = ["--url", "--admin-key", "--config", "-c"];

/** Removes the global flags (anywhere in the line) and returns them with the rest. */
function splitGlobals(args: string[]): { globals: Record<string, string>; rest: string[] } {
  const globals: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.split(/=(.*)/s, 2);
    if (!GLOBAL_FLAGS.includes(flag)) {
      rest.push(arg);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new CliError(`Missing value for ${flag}`, 2);
    globals[flag === "-c" ? "--config" : flag] = value;
  }
  return { globals, rest };
}

/** Resolves the gateway URL and admin key: flags, then environment, then the config file. */
async function resolveTarget(globals: Record<string, string>): Promise<AdminTarget> {
  let url = globals["--url"] ?? Deno.env.get("MODELGATE_URL");
  let adminKey: string | null = globals["--admin-key"] ?? Deno.env.get("MODELGATE_ADMIN_KEY") ??
    null;
  if (!url || !adminKey) {
    const explicit = globals["--config"] ?? Deno.env.get("MODELGATE_CONFIG");
    try {
      const config = await loadConfig(explicit ?? "configs/config.yaml");
      const host = ["0.0.0.0", "::", ""].includes(config.server.host)
        ? "127.0.0.1"
        : config.server.host;
      const scheme = config.server.tls ? "https" : "http";
      url ??= `${scheme}://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
      adminKey ??= config.admin.apiKey;
    } catch (err) {
      if (explicit) throw new CliError((err as Error).message, 2);
    }
  }
  return { url: url ?? "http://127.0.0.1:8080", adminKey };
}

/** Runs a management command; returns the exit code. */
export async function runCli(
  args: string[],
  io: { out: (text: string) => void; err: (text: string) => void } = {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
  },
): Promise<number> {
  try {
    const { globals, rest } = splitGlobals(args);
    const [command, ...commandArgs] = rest;
    const target = await resolveTarget(globals);
    let output: string;
    if (command === "key") output = await keyCommand(target, commandArgs);
    else if (command === "usage") output = await usageCommand(target, commandArgs);
    else if (command === "models") output = await modelsCommand(target, commandArgs);
    else if (command === "backends") output = await backendsCommand(target, commandArgs);
    else throw new CliError(`Unknown command "${command}"`, 2);
    io.out(output);
    return 0;
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`modelgate: ${err.message}`);
      return err.exitCode;
    }
    io.err(`modelgate: ${(err as Error).message}`);
    return 1;
  }
}
