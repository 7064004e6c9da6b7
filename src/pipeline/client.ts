/**
 * The client pipeline of /v1 and /api, composed into one middleware: CORS preflight -> client
 * address -> exchange -> metrics -> key -> IP allowlist -> rate limits, then the route. Each step
 * is its own small module; composing them here instead of as a chain of middleware keeps the
 * order in one place and awaits only the steps that really wait (a cached key needs none).
 * Whatever a step acquires is released when the exchange closes, however the request ends.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { closeExchange, type ExchangeOptions, openExchange } from "../proxy/exchange.ts";
import type { Step } from "./step.ts";

/** The steps, in the order they run. */
export interface ClientSteps {
  /** Answers a CORS preflight (returns it) or marks the response readable. */
  cors: (c: Context<GatewayEnv>) => Response | null;
  clientIp: Step;
  exchange: ExchangeOptions;
  observe: Step;
  auth: Step;
  ipAllowlist: Step;
  rateLimit: Step;
}

/** Builds the middleware. */
export function clientPipeline(steps: ClientSteps): MiddlewareHandler<GatewayEnv> {
  return async function clientRequest(c, next) {
    const preflight = steps.cors(c);
    if (preflight) return preflight;
    steps.clientIp(c);
    openExchange(c, steps.exchange);
    let thrown: unknown = null;
    try {
      steps.observe(c);
      const authenticated = steps.auth(c);
      if (authenticated) await authenticated;
      steps.ipAllowlist(c);
      const admitted = steps.rateLimit(c);
      if (admitted) await admitted;
      await next();
    } catch (err) {
      thrown = err;
      throw err;
    } finally {
      closeExchange(c, steps.exchange, thrown);
    }
  };
}
