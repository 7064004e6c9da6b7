/** createApp(deps): the one place where routes and middleware order are declared. */
import { Hono } from "hono";
import type { Config } from "./config.ts";
import type { GatewayEnv } from "./context.ts";
import { GatewayError, toGatewayError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { clientIp } from "./pipeline/client_ip.ts";
import { jsonBody } from "./pipeline/json_body.ts";
import { exchange } from "./proxy/exchange.ts";
import { proxyEndpoint } from "./proxy/handlers.ts";
import { getModel, listModels } from "./proxy/models.ts";
import type { ModelRegistry } from "./routing/registry.ts";

/** Everything the app depends on, passed in so tests can use real parts on loopback. */
export interface AppDeps {
  config: Config;
  registry: ModelRegistry;
  log: Logger;
  /** Clock in ms; injectable so tests never sleep. */
  now?: () => number;
  metrics?: Metrics;
}

/** Builds the gateway's Hono app. */
export function createApp(deps: AppDeps): Hono<GatewayEnv> {
  const now = deps.now ?? (() => performance.timeOrigin + performance.now());
  const { config, registry, log } = deps;
  const metrics = deps.metrics ?? new Metrics();
  describeMetrics(metrics);
  const app = new Hono<GatewayEnv>();
  const allowAll = () => true;

  app.onError((err, c) => {
    const error = toGatewayError(err);
    if (error.status >= 500) {
      log.error("request failed", {
        request_id: c.get("exchange")?.requestId,
        status: error.status,
        error: error.message,
        cause: describeCause(error.cause),
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

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get(
    "/metrics",
    (c) => c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );

  const v1 = new Hono<GatewayEnv>();
  v1.use(clientIp(config.server.trustedProxies));
  v1.use(exchange({ now, log }));
  v1.use(async function recordCompletion(c, next) {
    c.get("exchange").finishers.push((done) => {
      if (done.endpoint === null) return;
      const labels = {
        endpoint: done.endpoint,
        backend: done.backend ?? "",
        outcome: done.outcome,
      };
      metrics.inc("modelgate_requests_total", { ...labels, status: String(done.status) });
      metrics.inc(
        "modelgate_tokens_total",
        { ...labels, kind: "prompt" },
        done.usage.prompt_tokens,
      );
      metrics.inc(
        "modelgate_tokens_total",
        { ...labels, kind: "completion" },
        done.usage.completion_tokens,
      );
      metrics.observe("modelgate_request_duration_ms", { endpoint: done.endpoint }, done.latencyMs);
      if (done.ttftMs !== null) {
        metrics.observe(
          "modelgate_time_to_first_token_ms",
          { endpoint: done.endpoint },
          done.ttftMs,
        );
      }
      log.info("request", {
        request_id: done.requestId,
        endpoint: done.endpoint,
        model: done.model,
        backend: done.backend,
        stream: done.stream,
        status: done.status,
        outcome: done.outcome,
        prompt_tokens: done.usage.prompt_tokens,
        completion_tokens: done.usage.completion_tokens,
        latency_ms: Math.round(done.latencyMs),
        ttft_ms: done.ttftMs === null ? null : Math.round(done.ttftMs),
        client_ip: done.clientIp,
      });
    });
    await next();
  });
  v1.get("/models", listModels(registry, allowAll));
  v1.get("/models/:model{.+}", getModel(registry, allowAll));
  const body = jsonBody(config.server.maxBodyBytes);
  const proxyDeps = { registry, now, log };
  v1.post("/chat/completions", body, proxyEndpoint("chat", proxyDeps));
  v1.post("/completions", body, proxyEndpoint("completions", proxyDeps));
  v1.post("/embeddings", body, proxyEndpoint("embeddings", proxyDeps));
  app.route("/v1", v1);
  return app;
}

function describeMetrics(metrics: Metrics): void {
  metrics.describe("modelgate_requests_total", "Requests that reached routing, by outcome");
  metrics.describe("modelgate_tokens_total", "Tokens metered, by kind");
  metrics.describe("modelgate_errors_total", "Error responses, by status and code");
  metrics.describe("modelgate_request_duration_ms", "Request latency until the last byte");
  metrics.describe("modelgate_time_to_first_token_ms", "Time to the first streamed token");
}

function describeCause(cause: unknown): unknown {
  if (cause instanceof Error) return cause.message;
  return cause;
}
