/** createApp(deps): the one place where routes and middleware order are declared. */
import { Hono } from "hono";
import { adminAuth, FailureGate } from "../admin/auth.ts";
import { createAdminPages } from "../admin/pages.ts";
import { sessionAuth, Sessions } from "../admin/session.ts";
import { createAdminApi } from "../admin/api.ts";
import type { Config } from "./config.ts";
import type { GatewayEnv } from "./context.ts";
import { GatewayError, toGatewayError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import type { PendingWork } from "./pending.ts";
import { ipAllowlist, modelAllowed } from "./pipeline/access.ts";
import { apiKeyAuth } from "./pipeline/auth.ts";
import { rateLimit } from "./pipeline/rate_limit.ts";
import type { RateLimiter } from "./ratelimit/types.ts";
import { clientIp } from "./pipeline/client_ip.ts";
import { jsonBody } from "./pipeline/json_body.ts";
import type { KeyDirectory } from "./pipeline/key_directory.ts";
import { createAdmission } from "./pipeline/quota.ts";
import { exchange } from "./proxy/exchange.ts";
import { proxyEndpoint } from "./proxy/handlers.ts";
import { describeMe } from "./proxy/me.ts";
import { getModel, listModels } from "./proxy/models.ts";
import { describeRequestMetrics, observeRequests } from "./proxy/observe.ts";
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
    }
    metrics.inc("modelgate_errors_total", { status: String(error.status), code: error.code ?? "" });
    for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    // 499 is for logs only: a client that is gone receives nothing.
    return c.json(error.toJSON(), (error.status === 499 ? 400 : error.status) as 400);
  });
  app.notFound((c) => {
    const error = new GatewayError(`Unknown route "${c.req.method} ${c.req.path}"`, {
      status: 404,
      type: "invalid_request_error",
      code: "unknown_url",
    });
    return c.json(error.toJSON(), 404);
  });

  const resolveIp = clientIp(config.server.trustedProxies);
  const sessions = new Sessions(deps.adminKeyHash, now);
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

  // /v1: client address -> exchange -> key -> IP allowlist -> rate limits -> body -> model access
  // and quota -> backend. Each refusal comes before the work it saves.
  const v1 = new Hono<GatewayEnv>();
  v1.use(resolveIp);
  v1.use(exchange({ now, log, pending }));
  v1.use(observeRequests(metrics, log));
  v1.use(apiKeyAuth({ directory: deps.directory, now, log, metrics }));
  v1.use(ipAllowlist());
  v1.use(rateLimit(deps.limiter, metrics));
  const mayUse = (c: { get(key: "key"): GatewayEnv["Variables"]["key"] }, model: string) =>
    modelAllowed(c.get("key"), model);
  v1.get("/models", listModels(router, mayUse));
  v1.get("/models/:model{.+}", getModel(router, mayUse));
  v1.get("/me", describeMe(deps.keys, deps.broker, now));
  const body = jsonBody(config.server.maxBodyBytes);
  const proxyDeps = {
    router,
    now,
    log,
    pending,
    stop: deps.stop,
    defaultModel: (c: { get(key: "key"): GatewayEnv["Variables"]["key"] }) =>
      c.get("key").default_model,
    beforeSend: createAdmission({
      broker: deps.broker,
      ledger: deps.ledger,
      now,
      log,
      metrics,
      defaultMaxTokens: config.quota.defaultMaxTokens,
      prices: config.models,
    }),
  };
  v1.post("/chat/completions", body, proxyEndpoint("chat", proxyDeps));
  v1.post("/completions", body, proxyEndpoint("completions", proxyDeps));
  v1.post("/embeddings", body, proxyEndpoint("embeddings", proxyDeps));
  app.route("/v1", v1);

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
