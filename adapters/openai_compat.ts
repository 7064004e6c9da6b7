/** Adapters for servers that already speak OpenAI's API: OpenAI, vLLM, llama.cpp and third parties. */
import { readOpenAiUsage } from "../src/usage/counts.ts";
import { callUpstream, readUpstreamJson } from "./http.ts";
import type {
  Adapter,
  AdapterDeps,
  AdapterFactory,
  AdapterRequest,
  AdapterResponse,
  BackendConfig,
  Endpoint,
  UpstreamModel,
} from "./types.ts";

const PATHS: Record<Endpoint, string> = {
  chat: "/chat/completions",
  completions: "/completions",
  embeddings: "/embeddings",
};

/**
 * Builds an OpenAI-compatible adapter. `versionPrefix` is what sits between the configured
 * base URL and the endpoint: "" when the base URL already ends in `/v1` (OpenAI, third parties),
 * "/v1" for servers configured by host only (vLLM, llama.cpp).
 */
function openAiCompatible(versionPrefix: string): AdapterFactory {
  return function createOpenAiCompatAdapter(config: BackendConfig, deps: AdapterDeps): Adapter {
    const prefix = versionPrefix;
    return {
      config,
      async listModels(signal?: AbortSignal): Promise<UpstreamModel[]> {
        const response = await callUpstream(deps, config, {
          path: `${prefix}/models`,
          method: "GET",
          signal,
        });
        const body = await readUpstreamJson(deps, config, response, signal);
        const data = Array.isArray(body.data) ? body.data : [];
        return data.flatMap((item: unknown) => {
          const entry = item as Record<string, unknown> | null;
          if (!entry || typeof entry.id !== "string") return [];
          const created = typeof entry.created === "number" ? entry.created : undefined;
          return [{ id: entry.id, created }];
        });
      },
      async send(request: AdapterRequest): Promise<AdapterResponse> {
        const body = request.stream ? withUsageInStream(request.body) : request.body;
        const response = await callUpstream(deps, config, {
          path: prefix + PATHS[request.endpoint],
          body,
          signal: request.signal,
        });
        const type = response.headers.get("content-type") ?? "";
        if (request.stream && type.includes("text/event-stream") && response.body) {
          return { kind: "stream", status: response.status, stream: response.body };
        }
        const json = await readUpstreamJson(deps, config, response, request.signal);
        return {
          kind: "json",
          status: response.status,
          body: json,
          usage: readOpenAiUsage(json.usage),
        };
      },
    };
  };
}

/** Asks the backend for the final usage chunk; the gateway hides it if the client did not ask. */
function withUsageInStream(body: Record<string, unknown>): Record<string, unknown> {
  const options = body.stream_options && typeof body.stream_options === "object"
    ? body.stream_options as Record<string, unknown>
    : {};
  return { ...body, stream_options: { ...options, include_usage: true } };
}

/** OpenAI itself: base URL includes `/v1`. */
export const createOpenAiAdapter: AdapterFactory = openAiCompatible("");
/** Any third-party OpenAI-compatible API: base URL includes its version path. */
export const createThirdPartyAdapter: AdapterFactory = openAiCompatible("");
/** vLLM's OpenAI-compatible server: base URL is the host. */
export const createVllmAdapter: AdapterFactory = openAiCompatible("/v1");
/** llama.cpp's `llama-server`: base URL is the host. */
export const createLlamaCppAdapter: AdapterFactory = openAiCompatible("/v1");
