/** The contract every backend adapter implements; shared code never branches on a backend's kind. */

/** Backend kinds a config may name. */
export type BackendType = "openai" | "vllm" | "llamacpp" | "openai_compatible" | "ollama";

/** The OpenAI endpoints ModelGate proxies. */
export type Endpoint = "chat" | "completions" | "embeddings";

/** Token counts in OpenAI's shape. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Timeouts in milliseconds for one upstream call. */
export interface Timeouts {
  /** Opening a TCP connection to a backend that has not answered recently. */
  connectMs: number;
  /** From sending the request to receiving the response headers. */
  firstByteMs: number;
  /** Longest silence between two stream chunks. */
  idleMs: number;
}

/** One backend as configured (after validation and defaults). */
export interface BackendConfig {
  name: string;
  type: BackendType;
  /** Base URL as configured, without a trailing slash. */
  baseUrl: string;
  apiKey: string | null;
  /** Header that carries the credential (default `Authorization`). */
  authHeader: string;
  /** Text before the credential in that header (default `Bearer `). */
  authPrefix: string;
  /** Models served, or null to discover them from the backend's model list. */
  models: string[] | null;
  weight: number;
  /** Requests in flight to this backend at once; 0 = unlimited. */
  maxConcurrency: number;
  timeouts: Timeouts;
  /** Extra static headers sent upstream (from config only). */
  headers: Record<string, string>;
  /** The backend serves OpenAI's Responses API itself (`/responses`): requests pass through. */
  responses: boolean;
}

/** What the proxy asks an adapter to do. */
export interface AdapterRequest {
  endpoint: Endpoint;
  /** The client's OpenAI-format body, validated; `model` already set to the upstream name. */
  body: Record<string, unknown>;
  stream: boolean;
  /** Aborts the upstream call (client gone, gateway shutting down). */
  signal: AbortSignal;
  requestId: string;
}

/** A successful upstream answer, already in OpenAI's format. */
export type AdapterResponse =
  | {
    kind: "json";
    status: number;
    body: Record<string, unknown>;
    usage: Usage | null;
  }
  | {
    kind: "stream";
    status: number;
    /**
     * OpenAI-style SSE bytes (`data: {...}\n\n` ... `data: [DONE]\n\n`). The stream always
     * carries a usage chunk when the backend reports usage; the gateway strips it when the client
     * did not ask for `stream_options.include_usage`.
     */
    stream: ReadableStream<Uint8Array>;
  };

/** Client APIs a backend may speak natively, so requests in them pass through untranslated. */
export type NativeApi =
  | "responses"
  | "ollama_chat"
  | "ollama_generate"
  | "ollama_embed"
  | "ollama_embeddings";

/** A request in a backend's native API, forwarded as the client sent it (model replaced). */
export interface NativeRequest {
  api: NativeApi;
  body: Record<string, unknown>;
  stream: boolean;
  signal: AbortSignal;
  requestId: string;
}

/** A model as a backend lists it. */
export interface UpstreamModel {
  id: string;
  created?: number;
}

/** One backend behind one typed interface. */
export interface Adapter {
  readonly config: BackendConfig;
  /** Lists the models the backend serves (used for discovery and health). */
  listModels(signal?: AbortSignal): Promise<UpstreamModel[]>;
  /**
   * Sends one request. Throws GatewayError for transport failures (502/504) and for the backend's
   * own error answers (its 4xx status in OpenAI's shape, 5xx as 502).
   */
  send(request: AdapterRequest): Promise<AdapterResponse>;
  /** Whether the backend speaks a client API natively (optional ability). */
  speaks?(api: NativeApi): boolean;
  /**
   * Passes a request in a native API through; the answer stays in that API's format (its usage
   * is read by the client format's codec, so `usage` is null here).
   */
  sendNative?(request: NativeRequest): Promise<AdapterResponse>;
}

/** What adapters get from the gateway: injected so tests and benchmarks can swap them. */
export interface AdapterDeps {
  fetch: typeof fetch;
  /** Largest non-streamed answer read from a backend, after decompression. */
  maxResponseBytes: number;
  /** Removes every backend address and credential from text a client will see. */
  redact: (text: string) => string;
}

/** Builds an adapter for one configured backend. */
export type AdapterFactory = (config: BackendConfig, deps: AdapterDeps) => Adapter;
