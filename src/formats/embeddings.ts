/**
 * Embeddings (`POST /v1/embeddings`). Backends are always asked for plain float vectors and the
 * gateway encodes base64 itself when the client asked for it (the OpenAI SDKs and LangChain do by
 * default), so every backend kind answers in the encoding the client expects.
 */
import { Buffer } from "node:buffer";
import { invalidRequest } from "../errors.ts";
import { estimateContentTokens } from "../usage/estimate.ts";
import {
  MAX_DIMENSIONS,
  modelOf,
  optionalInt,
  textInputCount,
  withoutRoutingFields,
} from "./fields.ts";
import { openAiErrorEvent } from "./openai_events.ts";
import { type Codec, type ParsedRequest, PLAIN_EVENT } from "./types.ts";

type Json = Record<string, unknown>;

/** A validated embeddings request. */
export interface EmbeddingsRequest extends ParsedRequest {
  body: Json;
  /** The client wants each vector as base64 of little-endian float32 values. */
  base64: boolean;
}

/** Parses an embeddings body; it reserves its prompt estimate only (answers cost nothing). */
export function parseEmbeddings(
  body: Json,
  defaults: { fallbackModel: string | null },
): EmbeddingsRequest {
  const model = modelOf(body, defaults.fallbackModel);
  if (body.input === undefined || body.input === null) {
    throw invalidRequest("Missing required field", "input");
  }
  textInputCount(body.input, "input");
  const format = body.encoding_format;
  if (format !== undefined && format !== null && format !== "float" && format !== "base64") {
    throw invalidRequest('Field must be "float" or "base64"', "encoding_format");
  }
  optionalInt(body, "dimensions", { min: 1, max: MAX_DIMENSIONS });
  const forwarded = { ...withoutRoutingFields(body) };
  delete forwarded.encoding_format;
  const promptTokens = estimateContentTokens(body.input);
  return {
    model,
    stream: false,
    promptTokens,
    reserveTokens: promptTokens,
    body: forwarded,
    base64: format === "base64",
  };
}

/** Little-endian float32 bytes of a vector, base64-encoded (what OpenAI sends). */
export function encodeVector(vector: number[]): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  vector.forEach((value, index) => view.setFloat32(index * 4, Number(value), true));
  return Buffer.from(bytes).toString("base64");
}

/** The vector of a base64 embedding. */
export function decodeVector(text: string): number[] {
  const bytes = Buffer.from(text, "base64");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let offset = 0; offset + 4 <= bytes.byteLength; offset += 4) {
    out.push(view.getFloat32(offset, true));
  }
  return out;
}

/** Puts every vector of an answer in the encoding the client asked for (the same object if so). */
function encodeAnswer(body: Json, base64: boolean): Json {
  if (!Array.isArray(body.data)) return body;
  const mismatched = body.data.some((item: unknown) => {
    const vector = (item as Json | null)?.embedding;
    return base64 ? Array.isArray(vector) : typeof vector === "string";
  });
  if (!mismatched) return body;
  const data = body.data.map((item: unknown) => {
    if (!item || typeof item !== "object") return item;
    const entry = item as Json;
    const vector = entry.embedding;
    if (base64 && Array.isArray(vector)) return { ...entry, embedding: encodeVector(vector) };
    if (!base64 && typeof vector === "string") return { ...entry, embedding: decodeVector(vector) };
    return entry;
  });
  return { ...body, data };
}

/** The embeddings codec (never streamed). */
export const embeddingsCodec: Codec<EmbeddingsRequest> = {
  name: "embeddings",
  framing: "sse",
  streamType: "text/event-stream; charset=utf-8",
  parse: parseEmbeddings,
  async send(adapter, request, context) {
    const answer = await adapter.send({
      endpoint: "embeddings",
      body: { ...request.body, model: context.upstreamModel },
      stream: false,
      signal: context.signal,
      requestId: context.requestId,
    });
    if (answer.kind !== "json") return answer;
    return { ...answer, body: encodeAnswer(answer.body, request.base64) };
  },
  inspector: () => () => PLAIN_EVENT,
  answerTokens: () => 0,
  errorEvent: openAiErrorEvent,
};
