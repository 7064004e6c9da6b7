/** Flag parsing helpers shared by the CLI commands. */
import { parseArgs, type ParseArgsConfig } from "node:util";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;
import { CliError } from "./client.ts";

/** Parses flags; an unknown flag or a missing value is a CliError with exit code 2. */
export function parseFlags<const O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new CliError((err as Error).message.split("\n")[0], 2);
  }
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses `90s`, `15m`, `12h`, `30d`, `2w` into seconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!match) {
    throw new CliError(`Invalid ${flag} "${text}": expected a duration like 30d, 12h or 15m`, 2);
  }
  return Number(match[1]) * UNITS[match[2]];
}

/** Parses `--expires`: a duration from now, an ISO date, or `never`. */
export function parseExpiry(text: string, now = Date.now()): string | null {
  if (text === "never") return null;
  if (/^\d+[smhdw]$/.test(text)) {
    return new Date(now + parseDuration(text, "--expires") * 1000).toISOString();
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new CliError(`Invalid --expires "${text}": expected 30d, 12h, an ISO date or "never"`, 2);
  }
  return date.toISOString();
}

/** Parses a whole number flag; `unlimited` or `none` gives null. */
export function parseCount(text: string, flag: string): number | null {
  if (text === "unlimited" || text === "none") return null;
  if (!/^\d+$/.test(text)) {
    throw new CliError(`Invalid ${flag} "${text}": expected a whole number or "unlimited"`, 2);
  }
  return Number(text);
}

/** Splits a comma-separated list, dropping empty items. */
export function parseList(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter(Boolean);
}
