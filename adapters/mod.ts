/** The adapter for each backend kind; the only place that knows which kinds exist. */
import { createOllamaAdapter } from "./ollama.ts";
import {
  createLlamaCppAdapter,
  createOpenAiAdapter,
  createThirdPartyAdapter,
  createVllmAdapter,
} from "./openai_compat.ts";
import type { Adapter, AdapterDeps, AdapterFactory, BackendConfig, BackendType } from "./types.ts";

const FACTORIES: Record<BackendType, AdapterFactory> = {
  openai: createOpenAiAdapter,
  openai_compatible: createThirdPartyAdapter,
  vllm: createVllmAdapter,
  llamacpp: createLlamaCppAdapter,
  ollama: createOllamaAdapter,
};

/** Builds the adapter for one configured backend. */
export function createAdapter(config: BackendConfig, deps: AdapterDeps): Adapter {
  return FACTORIES[config.type](config, deps);
}
