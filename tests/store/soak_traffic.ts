/**
 * The requests of the accounting soak, one per kind: what a client sends and how far it reads.
 * Each resolves to what the client learnt of the gateway's answer: its status (null when the
 * connection failed before one arrived) and, for refusals, the error code.
 */
import OpenAI from "openai";

/** What a client learnt of one answer. */
export interface Answer {
  status: number | null;
  code: string | null;
}

/** Kinds of request the soak sends, each through the client that speaks it. */
export const KINDS = [
  "chat",
  "chat_stream",
  "responses",
  "responses_stream",
  "ollama_chat",
  "ollama_stream",
  "cancel_midstream",
  "backend_dies",
  "failover",
  "embeddings",
] as const;
export type Kind = typeof KINDS[number];

/** A gateway instance and one key's client for it. */
export interface Caller {
  url: string;
  key: string;
  /** Sent as `x-request-id`: the gateway's ledger record carries it. */
  requestId: string;
  client: OpenAI;
}

/** Answer tokens every request asks for at most, so it never uses more than it reserved. */
export const MAX_TOKENS = 20;
const messages = [{ role: "user" as const, content: "say hello please" }];

/** An SDK client of `key` on the gateway at `url`, without retries, tagging its request. */
export function callerOf(url: string, key: string, requestId: string): Caller {
  return {
    url,
    key,
    requestId,
    client: new OpenAI({
      apiKey: key,
      baseURL: `${url}/v1`,
      maxRetries: 0,
      timeout: 30_000,
      defaultHeaders: { "x-request-id": requestId },
    }),
  };
}

/** Sends one request of `kind` and reads its answer as that kind's client would. */
export function send(kind: Kind, caller: Caller): Promise<Answer> {
  const { client } = caller;
  const chat = { model: "gpt-test", messages, max_tokens: MAX_TOKENS };
  switch (kind) {
    case "chat":
      return answered(() => client.chat.completions.create(chat));
    case "chat_stream":
      return streamed(() => client.chat.completions.create({ ...chat, stream: true }));
    case "responses":
      return answered(() => client.responses.create(responsesBody()));
    case "responses_stream":
      return streamed(() => client.responses.create({ ...responsesBody(), stream: true }));
    case "ollama_chat":
    case "ollama_stream":
      return ollamaChat(caller, kind === "ollama_stream");
    case "cancel_midstream":
      return streamed(() => openSlowStream(caller), 2);
    case "backend_dies":
      return streamed(() =>
        client.chat.completions.create({ ...chat, model: "die-midstream", stream: true })
      );
    case "failover":
      return answered(() => client.chat.completions.create({ ...chat, model: "llama3.2" }));
    case "embeddings":
      return answered(() =>
        client.embeddings.create({ model: "embed-test", input: messages[0].content })
      );
  }
}

/** An open stream its client reads until told to stop, or until the connection is cut. */
export interface HeldStream {
  requestId: string;
  stop(): void;
  ended: Promise<void>;
}

/** Opens a stream that never ends by itself and reads its first chunk. */
export async function hold(caller: Caller): Promise<{ answer: Answer; held: HeldStream | null }> {
  let stream;
  try {
    stream = await openSlowStream(caller);
  } catch (err) {
    return { answer: refusal(err), held: null };
  }
  const chunks = stream[Symbol.asyncIterator]();
  await chunks.next(); // the backend is streaming to the client
  const ended = (async () => {
    try {
      while (!(await chunks.next()).done) { /* a client reading on */ }
    } catch {
      // Cut by a kill, or left by its client.
    }
  })();
  const held = { requestId: caller.requestId, stop: () => stream.controller.abort(), ended };
  return { answer: { status: 200, code: null }, held };
}

/** A chat stream that never ends by itself (the backend sends a chunk every 50 ms). */
function openSlowStream(caller: Caller) {
  return caller.client.chat.completions.create({
    model: "slow-stream",
    messages,
    max_tokens: MAX_TOKENS,
    stream: true,
  });
}

function responsesBody() {
  return { model: "gpt-test", input: messages[0].content, max_output_tokens: MAX_TOKENS };
}

/** The answer of a refused or failed SDK call. */
function refusal(err: unknown): Answer {
  if (!(err instanceof OpenAI.APIError)) throw err;
  return { status: err.status ?? null, code: typeof err.code === "string" ? err.code : null };
}

async function answered(request: () => Promise<unknown>): Promise<Answer> {
  try {
    await request();
    return { status: 200, code: null };
  } catch (err) {
    return refusal(err);
  }
}

/**
 * Opens a stream and reads it to its end, or only `stopAfter` events before leaving. A stream that
 * fails after its headers (a backend that died) was still answered.
 */
async function streamed(
  open: () => Promise<AsyncIterable<unknown> & { controller: AbortController }>,
  stopAfter = Infinity,
): Promise<Answer> {
  let stream;
  try {
    stream = await open();
  } catch (err) {
    return refusal(err);
  }
  let seen = 0;
  try {
    for await (const _ of stream) {
      if (++seen >= stopAfter) break;
    }
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
  } finally {
    stream.controller.abort();
  }
  return { status: 200, code: null };
}

/** Ollama's `/api/chat` with a ModelGate key, read to the end. */
async function ollamaChat(caller: Caller, stream: boolean): Promise<Answer> {
  const response = await fetch(`${caller.url}/api/chat`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${caller.key}`,
      "content-type": "application/json",
      "x-request-id": caller.requestId,
    },
    body: JSON.stringify({
      model: "llama3.2:1b",
      messages,
      stream,
      options: { num_predict: MAX_TOKENS },
    }),
  }).catch(() => null);
  if (!response) return { status: null, code: null };
  // Ollama's errors are text only: the status says enough here.
  await response.body?.pipeTo(new WritableStream()).catch(() => {});
  return { status: response.status, code: null };
}
