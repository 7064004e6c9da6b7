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
  UpstreamModel,
} from "./types.ts";

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
