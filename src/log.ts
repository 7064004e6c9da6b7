/** Structured logs: one JSON object per line on stderr. Never pass secrets as fields. */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** The logger every module receives. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let isoMs = NaN;
let iso = "";

/** The time as ISO 8601, formatted once per millisecond however many lines share it. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/** Builds a logger writing lines at or above `level` to `write` (buffered stderr by default). */
export function createLogger(
  level: LogLevel = "info",
  write: (line: string) => void = stderrLines.write,
): Logger {
  const at = (lineLevel: LogLevel) => (message: string, fields?: LogFields) => {
    if (RANK[lineLevel] < RANK[level]) return;
    // The fields are serialised as given and joined to the line's head: no merged copy of them.
    const head = `{"time":"${isoNow()}","level":"${lineLevel}","message":${
      JSON.stringify(message)
    }`;
    const rest = fields === undefined ? "{}" : JSON.stringify(fields);
    write(rest.length > 2 ? `${head},${rest.slice(1)}` : `${head}}`);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * Log lines on stderr, written in batches: one write system call per 20 ms (or per 64 KiB)
 * instead of one per line, which an access line per request would otherwise cost. What is
 * buffered is written when the process exits normally; a `kill -9` loses at most 20 ms of lines.
 */
export class LineBuffer {
  #pending: string[] = [];
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #encoder = new TextEncoder();

  constructor(readonly sink: (bytes: Uint8Array) => void, readonly delayMs = 20) {}

  /** Queues one line. */
  write = (line: string): void => {
    this.#pending.push(line);
    this.#size += line.length + 1;
    if (this.#size >= 65_536) return this.flush();
    if (this.#timer === null) {
      this.#timer = setTimeout(this.flush, this.delayMs);
      Deno.unrefTimer(this.#timer as unknown as number);
    }
  };

  /** Writes what is queued now. */
  flush = (): void => {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pending.length === 0) return;
    const text = this.#pending.join("\n") + "\n";
    this.#pending = [];
    this.#size = 0;
    try {
      this.sink(this.#encoder.encode(text));
    } catch {
      // Nowhere to report a broken stderr.
    }
  };
}

function writeAll(bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
}

const stderrLines = new LineBuffer(writeAll);
globalThis.addEventListener("unload", () => stderrLines.flush());

/** Writes every buffered log line now (before an exit that skips `unload`, e.g. Deno.exit). */
export function flushLogs(): void {
  stderrLines.flush();
}

/** A logger that drops everything (tests that do not read logs). */
export const silentLogger: Logger = createLogger("error", () => {});
