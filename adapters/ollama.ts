/** Ollama through its native API, translated to and from OpenAI's format. */
import { callUpstream, readUpstreamJson } from "./http.ts";
import { toOllamaChat, toOllamaEmbed, toOllamaGenerate } from "./ollama_request.ts";
import {
  fromOllamaChat,
  fromOllamaEmbed,
  fromOllamaGenerate,
  ollamaUsage,
} from "./ollama_response.ts";
import { ollamaToSse } from "./ollama_stream.ts";
import type {
  Adapter,
  AdapterDeps,
  AdapterRequest,
  AdapterResponse,
  BackendConfig,
  NativeApi,
  NativeRequest,
  UpstreamModel,
} from "./types.ts";

/** Ollama's own endpoints, for clients that speak its API: requests pass through. */
const NATIVE_PATHS = {
  ollama_chat: "/api/chat",
  ollama_generate: "/api/generate",
  ollama_embed: "/api/embed",
  ollama_embeddings: "/api/embeddings",
} as const;

/** Builds the Ollama adapter. The model name only ever travels in the JSON body. */
export function createOllamaAdapter(config: BackendConfig, deps: AdapterDeps): Adapter {
  const now = () => Date.now();
  return {
    config,
    async listModels(signal?: AbortSignal): Promise<UpstreamModel[]> {
      const response = await callUpstream(deps, config, {
        path: "/api/tags",
        method: "GET",
        signal,
      });
      const body = await readUpstreamJson(deps, config, response, signal);
      const models = Array.isArray(body.models) ? body.models : [];
      return models.flatMap((entry: Record<string, unknown>) => {
        const id = entry?.name ?? entry?.model;
        if (typeof id !== "string") return [];
        const modified = typeof entry.modified_at === "string"
          ? Date.parse(entry.modified_at)
          : NaN;
        return [{ id, created: Number.isNaN(modified) ? undefined : Math.floor(modified / 1000) }];
      });
    },
    speaks: (api: NativeApi) => api in NATIVE_PATHS,
    async sendNative(request: NativeRequest): Promise<AdapterResponse> {
      const response = await callUpstream(deps, config, {
        path: NATIVE_PATHS[request.api as keyof typeof NATIVE_PATHS],
        body: request.body,
        signal: request.signal,
      });
      if (request.stream && response.body) {
        return { kind: "stream", status: response.status, stream: response.body };
      }
      const json = await readUpstreamJson(deps, config, response, request.signal);
      return { kind: "json", status: response.status, body: json, usage: null };
    },
    async send(request: AdapterRequest): Promise<AdapterResponse> {
      const { endpoint, body, requestId, signal } = request;
      if (endpoint === "embeddings") {
        const response = await callUpstream(deps, config, {
          path: "/api/embed",
          body: toOllamaEmbed(body),
          signal,
        });
        const json = await readUpstreamJson(deps, config, response, signal);
        const usage = ollamaUsage(json);
        return { kind: "json", status: 200, body: fromOllamaEmbed(json, body.model), usage };
      }
      const chat = endpoint === "chat";
      const upstreamBody = chat
        ? toOllamaChat(body, request.stream)
        : toOllamaGenerate(body, request.stream);
      const response = await callUpstream(deps, config, {
        path: chat ? "/api/chat" : "/api/generate",
        body: upstreamBody,
        signal,
      });
      if (request.stream && response.body) {
        const transform = ollamaToSse({
          kind: endpoint,
          requestId,
          model: String(body.model),
          now,
        });
        return { kind: "stream", status: 200, stream: response.body.pipeThrough(transform) };
      }
      const json = await readUpstreamJson(deps, config, response, signal);
      const converted = chat
        ? fromOllamaChat(json, requestId, now)
        : fromOllamaGenerate(json, requestId, now);
      return { kind: "json", status: 200, body: converted, usage: ollamaUsage(json) };
    },
  };
}
