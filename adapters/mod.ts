/** The adapter for each backend kind; the only place that knows which kinds exist. */
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
  // Ollama also serves OpenAI's API under /v1; the native adapter replaces this.
  ollama: createVllmAdapter,
};

/** Builds the adapter for one configured backend. */
export function createAdapter(config: BackendConfig, deps: AdapterDeps): Adapter {
  return FACTORIES[config.type](config, deps);
}
