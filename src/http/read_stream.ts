/**
 * Reads a whole byte stream (a client's request body, a backend's answer) with three bounds: a
 * byte limit (for a backend's answer counted after decompression, so a small gzip bomb is caught
 * too), the longest silence between two chunks, and the caller's signal (the client left, or the
 * gateway stops). No read waits for ever and nothing is buffered past the limit.
 */
import { deadlines } from "../deadlines.ts";

/** Options for {@linkcode readStream}. */
export interface ReadStreamOptions {
  maxBytes: number;
  idleMs: number;
  signal?: AbortSignal;
  /** Keep the first `maxBytes` and stop, instead of failing (for error bodies). */
  truncate?: boolean;
}

/** Why a read stopped early. */
export type ReadFailure = "too_large" | "idle" | "aborted";

/** Thrown when a body could not be read whole. */
export class ReadStreamError extends Error {
  constructor(readonly reason: ReadFailure, readonly abortReason?: unknown) {
    super(
      reason === "too_large"
        ? "body over the size limit"
        : reason === "idle"
        ? "body stalled"
        : "read aborted",
    );
    this.name = "ReadStreamError";
  }
}

/** A body small enough to read natively in one go (its declared length is known). */
export const NATIVE_READ_MAX = 1024 * 1024;

/**
 * Reads a whole Request or Response body whose length is declared and small: the runtime reads it
 * natively in one go (far cheaper than a chunk loop in JavaScript). The idle bound then covers the
 * whole body. When it passes or `signal` aborts, `abort` is called: if it makes the read fail (a
 * fetch's controller does), nothing else is needed; without `abortEndsRead` the read is raced.
 */
export async function readDeclared(
  body: { bytes(): Promise<Uint8Array> },
  options: {
    idleMs: number;
    signal?: AbortSignal;
    abort: (reason: unknown) => void;
    abortEndsRead?: boolean;
  },
): Promise<Uint8Array> {
  if (options.signal?.aborted) throw new ReadStreamError("aborted", options.signal.reason);
  let stopped: ReadFailure | null = null;
  let fail: (error: ReadStreamError) => void = () => {};
  const stop = (reason: ReadFailure) => {
    stopped ??= reason;
    options.abort(reason);
    fail(new ReadStreamError(reason, options.signal?.reason));
  };
  const onAbort = () => stop("aborted");
  const deadline = deadlines.after(options.idleMs, () => stop("idle"));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const read = body.bytes();
  try {
    if (options.abortEndsRead) return await read;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => {});
    return await Promise.race([read, failed]);
  } catch (err) {
    if (stopped) throw new ReadStreamError(stopped, options.signal?.reason);
    throw err;
  } finally {
    deadline.cancel();
    options.signal?.removeEventListener("abort", onAbort);
    // The losing side of a race settles later and must not go unhandled.
    read.catch(() => {});
  }
}

/** Reads `body` to its end under the bounds; throws ReadStreamError past one of them. */
export async function readStream(
  body: ReadableStream<Uint8Array> | null,
  options: ReadStreamOptions,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  let stopped: ReadFailure | null = null;
  const stop = (reason: ReadFailure) => {
    stopped ??= reason;
    reader.cancel().catch(() => {});
  };
  const onAbort = () => stop("aborted");
  if (options.signal?.aborted) stop("aborted");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (!stopped) {
      const deadline = deadlines.after(options.idleMs, () => stop("idle"));
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } finally {
        deadline.cancel();
      }
      if (stopped || result.done) break;
      const room = options.maxBytes - size;
      if (result.value.byteLength > room) {
        if (!options.truncate) stop("too_large");
        else {
          chunks.push(result.value.subarray(0, room));
          size += room;
          reader.cancel().catch(() => {});
        }
        break;
      }
      chunks.push(result.value);
      size += result.value.byteLength;
    }
  } catch (err) {
    if (!stopped) throw err;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  if (stopped) throw new ReadStreamError(stopped, options.signal?.reason);
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return all;
}
