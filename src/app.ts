/** createApp(deps): the one place where routes and middleware order are declared. */
import { Hono } from "hono";
import type { Context } from "hono";
import { adminAuth, FailureGate } from "../admin/auth.ts";
import { createAdminPages } from "../admin/pages.ts";
import { sessionAuth, Sessions } from "../admin/session.ts";
import { createAdminApi } from "../admin/api.ts";
import type { Config } from "./config.ts";
import type { GatewayEnv } from "./context.ts";
import { GatewayError, toGatewayError } from "./errors.ts";
import { wellFormedPath } from "./http/path.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import type { PendingWork } from "./pending.ts";
import { chatCodec } from "./formats/chat.ts";
import { completionsCodec } from "./formats/completions.ts";
import { embeddingsCodec } from "./formats/embeddings.ts";
import {
  ollamaChatCodec,
  ollamaEmbedCodec,
  ollamaEmbeddingsCodec,
  ollamaGenerateCodec,
} from "./formats/ollama.ts";
import { ollamaErrorOf } from "./formats/ollama_events.ts";
import { responsesCodec } from "./formats/responses.ts";
import { ipAllowlistStep, modelAllowed, modelNotAllowed } from "./pipeline/access.ts";
import { authStep } from "./pipeline/auth.ts";
import { clientPipeline } from "./pipeline/client.ts";
import { rateLimitStep } from "./pipeline/rate_limit.ts";
import type { RateLimiter } from "./ratelimit/types.ts";
import { clientIp, clientIpStep } from "./pipeline/client_ip.ts";
import { corsStep } from "./pipeline/cors.ts";
import { jsonBody } from "./pipeline/json_body.ts";
import type { KeyDirectory } from "./pipeline/key_directory.ts";
import { createAdmission } from "./pipeline/quota.ts";
import { type ProxyDeps, proxyEndpoint } from "./proxy/handlers.ts";
import { InFlight } from "./proxy/in_flight.ts";
import { describeMe } from "./proxy/me.ts";
import { managementRefused, ollamaInfo } from "./proxy/ollama_api.ts";
import { getModel, listModels } from "./proxy/models.ts";
import { describeRequestMetrics, observeStep } from "./proxy/observe.ts";
import type { Router } from "./routing/types.ts";
import type { KeyStore } from "./store/key_store.ts";
import type { Ledger } from "./store/ledger.ts";
import type { QuotaBroker } from "./store/quota_broker.ts";

/** Everything the app depends on, passed in so tests can use real parts on loopback. */
export interface AppDeps {
  config: Config;
  router: Router;
  keys: KeyStore;
  ledger: Ledger;
  broker: QuotaBroker;
  directory: KeyDirectory;
  limiter: RateLimiter;
  /** SHA-256 (hex) of the admin key. */
  adminKeyHash: string;
  log: Logger;
  pending: PendingWork;
  /** Clock in ms; injectable so tests never sleep. */
  now?: () => number;
  metrics?: Metrics;
  /** Aborted when shutdown stops waiting for in-flight requests. */
  stop?: AbortSignal;
}

/** The detail an upstream error keeps for the log: the backend's status and raw body. */
function isUpstreamDetail(
  cause: unknown,
): cause is { status: number; body: string; backend: string } {
  return typeof cause === "object" && cause !== null && "backend" in cause && "body" in cause;
}

/** OpenAI endpoints the gateway does not serve: a clear 404 rather than "unknown route". */
const UNSERVED_V1 = [
  "/audio/*",
  "/images/*",
  "/files",
  "/files/*",
  "/batches",
  "/batches/*",
  "/rerank",
  "/moderations",
  "/fine_tuning/*",
  "/uploads/*",
  "/vector_stores/*",
  "/assistants/*",
  "/threads/*",
  "/realtime/*",
];

function unservedEndpoint(c: Context<GatewayEnv>): never {
  throw new GatewayError(`"${c.req.method} ${c.req.path}" is not served by this gateway`, {
    status: 404,
    type: "invalid_request_error",
    code: "unsupported_endpoint",
  });
}

/** Ollama's API lives under /api; its errors take Ollama's shape. */
function isOllamaPath(path: string): boolean {
  return path === "/api" || path.startsWith("/api/");
}

/** Builds the gateway's Hono app. */
export function createApp(deps: AppDeps): Hono<GatewayEnv> {
  const now = deps.now ?? Date.now;
  const { config, router, log, pending } = deps;
  const metrics = deps.metrics ?? new Metrics();
  describeRequestMetrics(metrics);
  const app = new Hono<GatewayEnv>();

  app.onError((err, c) => {
    const error = toGatewayError(err);
    if (error.status >= 500) {
      log.error("request failed", {
        request_id: c.get("exchange")?.requestId,
        status: error.status,
        error: error.message,
        cause: error.cause instanceof Error ? error.cause.message : error.cause,
      });
    } else if (isUpstreamDetail(error.cause)) {
      // A backend's own refusal: the client saw a redacted message; the raw one is kept here.
      log.warn("backend refused the request", {
        request_id: c.get("exchange")?.requestId,
        ...error.cause,
      });
    }
    metrics.inc("modelgate_errors_total", { status: String(error.status), code: error.code ?? "" });
    for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    // 499 is for logs only: a client that is gone receives nothing.
    const status = (error.status === 499 ? 400 : error.status) as 400;
    // Ollama's clients read `{"error":"<text>"}`; everyone else gets OpenAI's envelope.
    return c.json(isOllamaPath(c.req.path) ? ollamaErrorOf(error) : error.toJSON(), status);
  });
  app.notFound((c) => {
    const error = new GatewayError(`Unknown route "${c.req.method} ${c.req.path}"`, {
      status: 404,
      type: "invalid_request_error",
      code: "unknown_url",
    });
    return c.json(isOllamaPath(c.req.path) ? ollamaErrorOf(error) : error.toJSON(), 404);
  });

  app.use(wellFormedPath());
  const resolveIp = clientIp(config.server.trustedProxies);
  const sessions = new Sessions({ adminKeyHash: deps.adminKeyHash, now, kv: deps.keys.kv });
  const gate = new FailureGate(now);
  const requireAdmin = adminAuth({
    adminKeyHash: deps.adminKeyHash,
    now,
    log,
    metrics,
    gate,
    alternative: sessionAuth(sessions),
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  // Ready when at least one backend is not ejected.
  app.get("/readyz", (c) => {
    const up = router.snapshot().filter((b) => b.state === "healthy").length;
    return c.json({ status: up > 0 ? "ready" : "no_backend", backends_up: up }, up > 0 ? 200 : 503);
  });
  app.get(
    "/metrics",
    resolveIp,
    requireAdmin,
    (c) => c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );

  // /v1 and /api: CORS preflight -> client address -> exchange -> key -> IP allowlist -> rate
  // limits -> body -> model access and quota -> backend. Each refusal comes before the work it
  // saves.
  const pipeline = clientPipeline({
    cors: corsStep(config.server.corsOrigins),
    clientIp: clientIpStep(config.server.trustedProxies),
    exchange: { now, log, pending },
    observe: observeStep(metrics, log),
    auth: authStep({ directory: deps.directory, now, log, metrics }),
    ipAllowlist: ipAllowlistStep(),
    rateLimit: rateLimitStep(deps.limiter, metrics),
  });
  const clientApi = () => {
    const api = new Hono<GatewayEnv>();
    api.use(pipeline);
    return api;
  };
  const v1 = clientApi();
  const mayUse = (c: { get(key: "key"): GatewayEnv["Variables"]["key"] }, model: string) =>
    modelAllowed(c.get("key"), model);
  v1.get("/models", listModels(router, mayUse));
  v1.get("/models/:model{.+}", getModel(router, mayUse));
  v1.get("/me", describeMe(deps.keys, deps.broker, now));
  const body = jsonBody(config.server.maxBodyBytes);
  // When shutdown stops waiting, every request still waiting for a backend gets 503.
  const inFlight = new InFlight();
  deps.stop?.addEventListener("abort", () => inFlight.stopAll(deps.stop!.reason), { once: true });
  const proxyDeps: ProxyDeps = {
    router,
    now,
    log,
    pending,
    stop: deps.stop,
    inFlight,
    defaultMaxTokens: config.quota.defaultMaxTokens,
    maxEventBytes: config.server.maxStreamEventBytes,
    // A model outside the key's list is refused alike whether it exists or not.
    checkAccess(c, requested, canonical) {
      const key = c.get("key");
      if (!modelAllowed(key, requested) && !modelAllowed(key, canonical)) {
        throw modelNotAllowed(requested);
      }
    },
    beforeSend: createAdmission({
      broker: deps.broker,
      ledger: deps.ledger,
      now,
      log,
      metrics,
      prices: config.models,
    }),
  };
  v1.post("/chat/completions", body, proxyEndpoint(chatCodec, proxyDeps));
  v1.post("/completions", body, proxyEndpoint(completionsCodec, proxyDeps));
  v1.post("/embeddings", body, proxyEndpoint(embeddingsCodec, proxyDeps));
  v1.post("/responses", body, proxyEndpoint(responsesCodec, proxyDeps));
  for (const path of UNSERVED_V1) v1.all(path, unservedEndpoint);
  app.route("/v1", v1);

  // Ollama's own API, for ollama-js and the tools built for Ollama, with the same keys.
  const ollama = clientApi();
  const info = ollamaInfo(router, mayUse);
  ollama.get("/tags", info.tags);
  ollama.get("/ps", info.ps);
  ollama.get("/version", info.version);
  ollama.post("/show", body, info.show);
  ollama.post("/chat", body, proxyEndpoint(ollamaChatCodec, proxyDeps));
  ollama.post("/generate", body, proxyEndpoint(ollamaGenerateCodec, proxyDeps));
  ollama.post("/embed", body, proxyEndpoint(ollamaEmbedCodec, proxyDeps));
  ollama.post("/embeddings", body, proxyEndpoint(ollamaEmbeddingsCodec, proxyDeps));
  for (const path of ["/pull", "/push", "/create", "/copy", "/delete", "/blobs/*"]) {
    ollama.all(path, managementRefused);
  }
  app.route("/api", ollama);

  const admin = new Hono<GatewayEnv>();
  admin.use(resolveIp);
  admin.use(requireAdmin);
  admin.route(
    "/",
    createAdminApi({
      keys: deps.keys,
      ledger: deps.ledger,
      broker: deps.broker,
      directory: deps.directory,
      router,
      defaults: config.defaults,
      now,
    }),
  );
  app.route("/admin/api", admin);

  const pages = new Hono<GatewayEnv>();
  pages.use(resolveIp);
  pages.route("/", createAdminPages({ sessions, adminKeyHash: deps.adminKeyHash, gate, log }));
  app.route("/admin", pages);
  return app;
}
