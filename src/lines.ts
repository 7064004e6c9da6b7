/** Splits a byte stream into text lines without rescanning: cost stays linear in the input. */
export class LineSplitter {
  #decoder = new TextDecoder();
  #pending = "";

  /** Feeds bytes and returns the complete lines they finish (without the line break). */
  push(chunk: Uint8Array): string[] {
    const fresh = this.#decoder.decode(chunk, { stream: true });
    let index = fresh.indexOf("\n");
    if (index === -1) {
      // Only the new text is scanned; a long line spread over many chunks stays linear.
      this.#pending += fresh;
      return [];
    }
    const lines: string[] = [];
    let start = 0;
    let head = this.#pending;
    while (index !== -1) {
      lines.push(stripCr(head + fresh.slice(start, index)));
      head = "";
      start = index + 1;
      index = fresh.indexOf("\n", start);
    }
    this.#pending = fresh.slice(start);
    return lines;
  }

  /** Returns what is left after the last line break (a final line without one), if any. */
  flush(): string | null {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = "";
    return rest.length > 0 ? stripCr(rest) : null;
  }
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
