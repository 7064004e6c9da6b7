/**
 * HTTP/1.1 spoken by hand over a loopback socket, for what fetch cannot send: headers without a
 * body yet, a body that pauses, chunked bodies of any size, connections that never send anything.
 */

const encoder = new TextEncoder();

/** A parsed HTTP response. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** One client connection. */
export class RawConnection {
  #buffer = new Uint8Array(0);

  private constructor(readonly conn: Deno.TcpConn) {}

  /** Connects to a gateway URL such as `http://127.0.0.1:8080`. */
  static async open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new RawConnection(await Deno.connect({ hostname, port: Number(port) }));
  }

  /** Sends text or bytes; false when the server has closed the connection. */
  async send(data: string | Uint8Array): Promise<boolean> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      let written = 0;
      while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
      return true;
    } catch {
      return false;
    }
  }

  /** Reads one response (Content-Length or chunked body, or until the server closes). */
  async response(): Promise<RawResponse> {
    const end = await this.#until((data) => indexOf(data, "\r\n\r\n"));
    const head = new TextDecoder().decode(this.#take(end + 4)).split("\r\n");
    const status = Number(head[0].split(" ")[1]);
    const headers = new Headers();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const length = headers.get("content-length");
    let body: Uint8Array;
    if (length !== null) {
      await this.#until((data) => data.length >= Number(length) ? Number(length) : -1);
      body = this.#take(Number(length));
    } else if (headers.get("transfer-encoding")?.includes("chunked")) {
      const end = await this.#until((data) => indexOf(data, "\r\n0\r\n\r\n"));
      body = dechunk(this.#take(end + 7));
    } else {
      await this.#until(() => -1);
      body = this.#take(this.#buffer.length);
    }
    return { status, headers, body: new TextDecoder().decode(body) };
  }

  /** Whether the server closed the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    const timer = setTimeout(() => this.conn.close(), ms);
    try {
      const chunk = new Uint8Array(1024);
      while (true) {
        const n = await this.conn.read(chunk);
        if (n === null) return true;
      }
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection (again is fine). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  async #until(found: (data: Uint8Array) => number): Promise<number> {
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const at = found(this.#buffer);
      if (at >= 0) return at;
      let n: number | null = null;
      try {
        n = await this.conn.read(chunk);
      } catch {
        // Reset by the server: what arrived is all there is.
      }
      if (n === null) {
        const last = found(this.#buffer);
        if (last >= 0) return last;
        if (this.#buffer.length === 0) throw new Error("connection closed before a response");
        return this.#buffer.length;
      }
      const next = new Uint8Array(this.#buffer.length + n);
      next.set(this.#buffer);
      next.set(chunk.subarray(0, n), this.#buffer.length);
      this.#buffer = next;
    }
  }

  #take(n: number): Uint8Array {
    const taken = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return taken;
  }
}

function indexOf(data: Uint8Array, text: string): number {
  const needle = encoder.encode(text);
  outer: for (let i = 0; i + needle.length <= data.length; i++) {
    for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function dechunk(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    const lineEnd = at + indexOf(data.subarray(at), "\r\n");
    const size = parseInt(new TextDecoder().decode(data.subarray(at, lineEnd)), 16);
    if (!size) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** One chunk of a chunked request body. */
export function chunk(data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const out = new Uint8Array(bytes.length + 16);
  const head = encoder.encode(`${bytes.length.toString(16)}\r\n`);
  out.set(head);
  out.set(bytes, head.length);
  out.set(encoder.encode("\r\n"), head.length + bytes.length);
  return out.subarray(0, head.length + bytes.length + 2);
}
