/** Backend configs and adapters for unit tests of code that reads a backend's config only. */
import type { Adapter, BackendConfig, UpstreamModel } from "../../adapters/types.ts";

/** A vLLM backend config at `http://<name>:8000`, with `overrides` applied. */
export function backendConfig(name: string, overrides: Partial<BackendConfig> = {}): BackendConfig {
  return {
    name,
    type: "vllm",
    baseUrl: `http://${name}:8000`,
    apiKey: null,
    authHeader: "Authorization",
    authPrefix: "Bearer ",
    models: null,
    weight: 1,
    maxConcurrency: 0,
    timeouts: { connectMs: 1000, firstByteMs: 1000, idleMs: 1000 },
    headers: {},
    responses: false,
    ...overrides,
  };
}

/**
 * An adapter that carries a config and answers its model list with `listModels`; sending is
 * never expected (routing tests send through their own attempt callbacks).
 */
export function configAdapter(
  config: BackendConfig,
  listModels: (signal?: AbortSignal) => Promise<UpstreamModel[]> = () =>
    Promise.reject(new Error("listModels() was not expected")),
): Adapter {
  return {
    config,
    listModels,
    send: () => Promise.reject(new Error("send() was not expected")),
  };
}
