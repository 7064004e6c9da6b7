/**
 * Reads a whole byte stream (a client's request body, a backend's answer) with three bounds: a
 * byte limit (for a backend's answer counted after decompression, so a small gzip bomb is caught
 * too), the longest silence between two chunks, and the caller's signal (the client left, or the
 * gateway stops). No read waits for ever and nothing is buffered past the limit.
 */

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
      const timer = setTimeout(() => stop("idle"), options.idleMs);
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } finally {
        clearTimeout(timer);
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
