/** Adapters for servers that already speak OpenAI's API: OpenAI, vLLM, llama.cpp and third parties. */
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
  Usage,
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
        const body = await readUpstreamJson(config, response);
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
        const json = await readUpstreamJson(config, response);
        return { kind: "json", status: response.status, body: json, usage: readUsage(json.usage) };
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

/** Reads OpenAI's `usage` object; anything malformed counts as absent. */
export function readUsage(value: unknown): Usage | null {
  if (!value || typeof value !== "object") return null;
  const usage = value as Record<string, unknown>;
  const prompt = toCount(usage.prompt_tokens);
  const completion = toCount(usage.completion_tokens);
  if (prompt === null && completion === null) return null;
  const total = toCount(usage.total_tokens) ?? (prompt ?? 0) + (completion ?? 0);
  return { prompt_tokens: prompt ?? 0, completion_tokens: completion ?? 0, total_tokens: total };
}

function toCount(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value >= 0
    ? Math.floor(value)
    : null;
}

/** OpenAI itself: base URL includes `/v1`. */
export const createOpenAiAdapter: AdapterFactory = openAiCompatible("");
/** Any third-party OpenAI-compatible API: base URL includes its version path. */
export const createThirdPartyAdapter: AdapterFactory = openAiCompatible("");
/** vLLM's OpenAI-compatible server: base URL is the host. */
export const createVllmAdapter: AdapterFactory = openAiCompatible("/v1");
/** llama.cpp's `llama-server`: base URL is the host. */
export const createLlamaCppAdapter: AdapterFactory = openAiCompatible("/v1");
