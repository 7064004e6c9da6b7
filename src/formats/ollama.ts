/**
 * Ollama's own API for clients (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`):
 * passed through to Ollama backends as it came, translated to OpenAI's format for every other
 * backend and back. Streams are NDJSON, errors Ollama's `{"error":"..."}`.
 */
import type { BackendType, NativeApi } from "../../adapters/types.ts";
import { textTokens } from "../usage/estimate.ts";
import { withoutRoutingFields } from "./fields.ts";
import {
  OLLAMA_STREAM_TYPE,
  ollamaErrorLine,
  ollamaLineInfo,
  ollamaUsage,
} from "./ollama_events.ts";
import {
  assertTranslatable,
  type ParsedOllamaRequest,
  parseOllamaChat,
  parseOllamaEmbed,
  parseOllamaGenerate,
  parseOllamaLegacyEmbeddings,
} from "./ollama_request.ts";
import {
  asObject,
  chatToOllamaChat,
  chatToOllamaGenerate,
  embeddingsToOllamaEmbed,
  embeddingsToOllamaLegacy,
  type OllamaContext,
} from "./ollama_response.ts";
import { chatSseToOllama } from "./ollama_stream.ts";
import type { ClientAnswer, Codec, FormatName, ParseDefaults } from "./types.ts";

type Json = Record<string, unknown>;

/** A validated Ollama request: its translation, and the body as it came for Ollama backends. */
export interface OllamaRequest extends ParsedOllamaRequest {
  body: Json;
}

interface OllamaFormat {
  name: FormatName;
  api: NativeApi;
  parse: (body: Json, defaults: ParseDefaults) => ParsedOllamaRequest;
  /** Turns an OpenAI answer into this endpoint's Ollama answer. */
  translate: (answer: Json, ctx: OllamaContext) => Json;
  /** The stream translation, for the endpoints that stream. */
  stream?: "chat" | "generate";
}

/** Answer tokens of an Ollama answer whose backend reported no counts: its text, by length. */
function ollamaAnswerTokens(body: Json): number {
  const message = asObject(body.message);
  const text = typeof message.content === "string"
    ? message.content
    : typeof body.response === "string"
    ? body.response
    : "";
  return textTokens(text);
}

/**
 * The translated body as the backend takes it. vLLM and llama.cpp accept Ollama's `top_k` and
 * `max_tokens`; OpenAI's own API refuses `top_k` with a 400 and takes the answer limit as
 * `max_completion_tokens` (its reasoning models refuse `max_tokens`).
 */
function forBackend(type: BackendType, body: Json): Json {
  if (type !== "openai") return body;
  const { top_k: _topK, max_tokens: maxTokens, ...rest } = body;
  return maxTokens === undefined ? rest : { ...rest, max_completion_tokens: maxTokens };
}

function ollamaCodec(format: OllamaFormat): Codec<OllamaRequest> {
  return {
    name: format.name,
    framing: "ndjson",
    streamType: OLLAMA_STREAM_TYPE,
    parse(body, defaults) {
      return { ...format.parse(body, defaults), body: withoutRoutingFields(body) };
    },
    async send(adapter, request, send): Promise<ClientAnswer> {
      if (adapter.speaks?.(format.api) && adapter.sendNative) {
        const answer = await adapter.sendNative({
          api: format.api,
          // Ollama streams when `stream` is absent: say what the client was promised.
          body: { ...request.body, model: send.upstreamModel, stream: request.stream },
          stream: request.stream,
          signal: send.signal,
          requestId: send.requestId,
        });
        return answer.kind === "json" ? { ...answer, usage: ollamaUsage(answer.body) } : answer;
      }
      assertTranslatable(request);
      const answer = await adapter.send({
        endpoint: request.endpoint,
        body: forBackend(adapter.config.type, { ...request.openai, model: send.upstreamModel }),
        stream: request.stream,
        signal: send.signal,
        requestId: send.requestId,
      });
      const ctx: OllamaContext = {
        model: request.model,
        now: send.now,
        startedAt: send.startedAt,
        hideThinking: request.hideThinking,
      };
      if (answer.kind === "stream") {
        if (!format.stream) return answer;
        return {
          ...answer,
          stream: answer.stream.pipeThrough(chatSseToOllama(format.stream, ctx)),
        };
      }
      return { ...answer, body: format.translate(answer.body, ctx) };
    },
    inspector: () => ollamaLineInfo,
    answerTokens: ollamaAnswerTokens,
    errorEvent: (_code, message) => ollamaErrorLine(message),
  };
}

/** `POST /api/chat`. */
export const ollamaChatCodec: Codec<OllamaRequest> = ollamaCodec({
  name: "ollama_chat",
  api: "ollama_chat",
  parse: parseOllamaChat,
  translate: chatToOllamaChat,
  stream: "chat",
});

/** `POST /api/generate`. */
export const ollamaGenerateCodec: Codec<OllamaRequest> = ollamaCodec({
  name: "ollama_generate",
  api: "ollama_generate",
  parse: parseOllamaGenerate,
  translate: chatToOllamaGenerate,
  stream: "generate",
});

/** `POST /api/embed`. */
export const ollamaEmbedCodec: Codec<OllamaRequest> = ollamaCodec({
  name: "ollama_embed",
  api: "ollama_embed",
  parse: parseOllamaEmbed,
  translate: embeddingsToOllamaEmbed,
});

/** `POST /api/embeddings` (Ollama's older embeddings endpoint). */
export const ollamaEmbeddingsCodec: Codec<OllamaRequest> = ollamaCodec({
  name: "ollama_embed",
  api: "ollama_embeddings",
  parse: parseOllamaLegacyEmbeddings,
  translate: embeddingsToOllamaLegacy,
});
