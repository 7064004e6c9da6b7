/** OpenAI error `type` values ModelGate emits. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "api_error";

/** Options for {@linkcode GatewayError}. */
export interface GatewayErrorOptions {
  status: number;
  type: ErrorType;
  code?: string | null;
  param?: string | null;
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>;
  /** Internal detail for logs only; never shown to clients. */
  cause?: unknown;
  /** The backend had already answered (headers sent) when this failed: never retried. */
  afterFirstByte?: boolean;
}

/** The one error class every layer throws; rendered as OpenAI's error envelope. */
export class GatewayError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;
  readonly afterFirstByte: boolean;

  constructor(message: string, options: GatewayErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "GatewayError";
    this.status = options.status;
    this.type = options.type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
    this.afterFirstByte = options.afterFirstByte ?? false;
  }

  /** The JSON body OpenAI clients expect. */
  toJSON(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

/** OpenAI's error envelope. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * 503 when the store a decision needs (keys, quota) cannot be reached: the client may retry; the
 * store's own error stays in the cause, for the log.
 */
export function storageUnavailable(what: string, cause: unknown): GatewayError {
  return new GatewayError(`${what} cannot be checked right now; try again shortly`, {
    status: 503,
    type: "api_error",
    code: "storage_unavailable",
    headers: { "retry-after": "1" },
    cause,
  });
}

/** 400 for a malformed or invalid request; `param` names the field. */
export function invalidRequest(message: string, param: string | null = null): GatewayError {
  return new GatewayError(message, {
    status: 400,
    type: "invalid_request_error",
    code: param ? "invalid_value" : "invalid_request",
    param,
  });
}

/** 400 for a valid parameter of a client API that this gateway does not serve. */
export function unsupportedParameter(message: string, param: string): GatewayError {
  return new GatewayError(message, {
    status: 400,
    type: "invalid_request_error",
    code: "unsupported_parameter",
    param,
  });
}

/** 404 for a model no backend serves. */
export function modelNotFound(model: string): GatewayError {
  return new GatewayError(`Model "${model}" is not served by any backend`, {
    status: 404,
    type: "invalid_request_error",
    code: "model_not_found",
    param: "model",
  });
}

/** 413 for a body over `server.max_body_bytes`. */
export function requestTooLarge(limit: number): GatewayError {
  return new GatewayError(`Request body is larger than the limit of ${limit} bytes`, {
    status: 413,
    type: "invalid_request_error",
    code: "request_too_large",
  });
}

/** 502 when a backend cannot be reached or answers with a server error. */
export function upstreamError(
  message: string,
  cause?: unknown,
  afterFirstByte = false,
): GatewayError {
  return new GatewayError(message, {
    status: 502,
    type: "api_error",
    code: "upstream_error",
    cause,
    afterFirstByte,
  });
}

/** 504 when a backend does not answer in time. */
export function upstreamTimeout(
  message: string,
  cause?: unknown,
  afterFirstByte = false,
): GatewayError {
  return new GatewayError(message, {
    status: 504,
    type: "api_error",
    code: "upstream_timeout",
    cause,
    afterFirstByte,
  });
}

/** 503 when no backend for a model is currently usable; `retryAfter` in seconds. */
export function noBackendAvailable(model: string, retryAfter = 1): GatewayError {
  return new GatewayError(`No backend is available for model "${model}"`, {
    status: 503,
    type: "api_error",
    code: "no_backend_available",
    headers: { "retry-after": String(retryAfter) },
  });
}

/** 499 (logs only: the client is gone) when the client closed the request before its answer. */
export function clientClosed(cause?: unknown): GatewayError {
  return new GatewayError("The client closed the request", {
    status: 499,
    type: "invalid_request_error",
    code: "client_closed_request",
    cause,
  });
}

/** Turns anything thrown into a GatewayError; unknown errors become an opaque 500. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError("The gateway failed to handle the request", {
    status: 500,
    type: "api_error",
    code: "internal_error",
    cause: err,
  });
}

/** 503 for requests still waiting when a shutdown stops waiting for them. */
export function shuttingDown(): GatewayError {
  return new GatewayError("The gateway is shutting down; retry the request", {
    status: 503,
    type: "api_error",
    code: "server_shutting_down",
    headers: { "retry-after": "1" },
  });
}
