/** Ollama's informational answers (`/api/tags`, `/api/show`, `/api/ps`, `/api/version`) for the gateway's models. */
import { createHash } from "node:crypto";

type Json = Record<string, unknown>;

/** A model the gateway serves, as `/v1/models` lists it. */
export interface OllamaModelEntry {
  id: string;
  /** Seconds since the epoch. */
  created: number;
  owned_by: string;
  /**
   * What the model can do, in Ollama's words ("completion", "tools", "vision", "embedding",
   * "thinking"); clients such as editors read these from `/api/show`. Default: ["completion"].
   */
  capabilities?: string[];
}

/**
 * The Ollama API version `/api/version` reports: the API level this translation follows, so
 * clients that check a minimum version (tools, `think`, structured outputs) enable them.
 */
export const OLLAMA_API_VERSION = "0.12.0";

/** Far enough ahead that Ollama's CLI shows "Forever": the gateway unloads nothing. */
const NEVER_EXPIRES = "9999-12-31T23:59:59.000Z";

/** `/api/tags`: the models this key may use. */
export function ollamaTags(models: OllamaModelEntry[]): { models: Json[] } {
  return { models: models.map(listEntry) };
}

/** `/api/show` for one model: what ollama-js `show()` returns, with nothing the gateway cannot know. */
export function ollamaShow(model: OllamaModelEntry): Json {
  return {
    license: "",
    modelfile: "",
    parameters: "",
    template: "",
    details: details(),
    model_info: {},
    capabilities: model.capabilities ?? ["completion"],
    modified_at: modifiedAt(model.created),
  };
}

/** `/api/ps`: the given models as loaded, with no size known and no expiry. */
export function ollamaPs(models: OllamaModelEntry[]): { models: Json[] } {
  return {
    models: models.map((model) => {
      const { modified_at: _, ...entry } = listEntry(model);
      return { ...entry, expires_at: NEVER_EXPIRES, size_vram: 0, context_length: 0 };
    }),
  };
}

/** `/api/version`. */
export function ollamaVersion(version: string = OLLAMA_API_VERSION): { version: string } {
  return { version };
}

function listEntry(model: OllamaModelEntry): Json {
  return {
    name: model.id,
    model: model.id,
    modified_at: modifiedAt(model.created),
    size: 0,
    // Ollama's CLI shows the first 12 characters as the model's ID, so it must be that long.
    digest: digestOf(model.id),
    details: details(),
  };
}

function details(): Json {
  return {
    parent_model: "",
    format: "",
    family: "",
    families: [],
    parameter_size: "",
    quantization_level: "",
  };
}

/** A stable 64-hex-digit ID per model name, in the shape of Ollama's digests. */
function digestOf(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}

function modifiedAt(createdSeconds: number): string {
  const ms = createdSeconds * 1000;
  return new Date(Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : 0).toISOString();
}
