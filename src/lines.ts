/**
 * Splits a byte stream into text lines without rescanning: cost stays linear in the input. A line
 * ends at CR, LF or CRLF (what the SSE specification allows; NDJSON uses LF), and no line may
 * grow past a byte limit, so a backend that never sends a line break cannot fill the memory.
 */

/** The longest line a backend may send by default: 8 MiB. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/** Thrown when a line passes the limit. */
export class LineTooLongError extends Error {
  constructor(limit: number) {
    super(`A line of the stream is longer than ${limit} bytes`);
    this.name = "LineTooLongError";
  }
}

const LINE_END = /\r\n|\r|\n/g;

/** Splits bytes into lines (without their line breaks). */
export class LineSplitter {
  #decoder = new TextDecoder();
  #pending = "";
  /** Bytes (or, for the part left over from a chunk, characters) in `#pending`. */
  #pendingSize = 0;
  /** The last chunk ended in CR: a LF at the start of the next one belongs to it. */
  #skipLf = false;
  #maxBytes: number;
  /** A line passed the limit after good lines were returned: the next call throws. */
  #overflowed = false;

  constructor(maxLineBytes: number = MAX_LINE_BYTES) {
    this.#maxBytes = maxLineBytes;
  }

  /** Characters decoded from the last chunk pushed. */
  lastTextLength = 0;

  /** Whether nothing is held back: no partial line, no pending CR, no overflow. */
  get idle(): boolean {
    return this.#pending === "" && !this.#skipLf && !this.#overflowed;
  }

  /** Feeds bytes and returns the lines they complete. Throws LineTooLongError past the limit. */
  push(chunk: Uint8Array): string[] {
    if (this.#overflowed) throw new LineTooLongError(this.#maxBytes);
    let text = this.#decoder.decode(chunk, { stream: true });
    this.lastTextLength = text.length;
    if (this.#skipLf && text !== "") {
      this.#skipLf = false;
      if (text.charCodeAt(0) === 10) text = text.slice(1);
    }
    LINE_END.lastIndex = 0;
    let match = LINE_END.exec(text);
    if (match === null) {
      this.#pending += text;
      this.#pendingSize += chunk.byteLength;
      if (this.#pendingSize > this.#maxBytes) throw new LineTooLongError(this.#maxBytes);
      return [];
    }
    const lines: string[] = [];
    let start = 0;
    let head = this.#pending;
    while (match !== null) {
      const line = head + text.slice(start, match.index);
      if (line.length > this.#maxBytes) return this.#overflow(lines);
      lines.push(line);
      head = "";
      start = match.index + match[0].length;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === "\r" && start === text.length) this.#skipLf = true;
      match = LINE_END.exec(text);
    }
    this.#pending = text.slice(start);
    this.#pendingSize = this.#pending.length;
    if (this.#pendingSize > this.#maxBytes) return this.#overflow(lines);
    return lines;
  }

  /** Returns the good lines before an over-long one, and fails from the next call on. */
  #overflow(lines: string[]): string[] {
    this.#pending = "";
    this.#pendingSize = 0;
    if (lines.length === 0) throw new LineTooLongError(this.#maxBytes);
    this.#overflowed = true;
    return lines;
  }

  /** Returns what is left after the last line break (a final line without one), if any. */
  flush(): string | null {
    if (this.#overflowed) throw new LineTooLongError(this.#maxBytes);
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = "";
    this.#pendingSize = 0;
    this.#skipLf = false;
    return rest.length > 0 ? rest : null;
  }
}
