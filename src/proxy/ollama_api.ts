/** Ollama's informational endpoints (`/api/tags`, `/api/show`, `/api/ps`, `/api/version`) for a key. */
import type { Handler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { GatewayError } from "../errors.ts";
import { ollamaPs, ollamaShow, ollamaTags, ollamaVersion } from "../formats/ollama_info.ts";
import { parseOllamaShow } from "../formats/ollama_request.ts";
import type { Router } from "../routing/types.ts";
import { type ModelFilter, visibleModels } from "./models.ts";

/** The handlers, over the models the calling key may use. */
export function ollamaInfo(router: Router, allowed: ModelFilter) {
  const visible = (c: Parameters<Handler<GatewayEnv>>[0]) => visibleModels(router, allowed, c);
  return {
    tags: ((c) => c.json(ollamaTags(visible(c)))) as Handler<GatewayEnv>,
    ps: ((c) => c.json(ollamaPs(visible(c)))) as Handler<GatewayEnv>,
    version: ((c) => c.json(ollamaVersion())) as Handler<GatewayEnv>,
    show: ((c) => {
      const name = parseOllamaShow(c.get("body"));
      const model = visible(c).find((m) => m.id === name);
      // A model the key may not use looks the same as one that does not exist.
      if (!model) {
        throw new GatewayError(`model "${name}" not found`, {
          status: 404,
          type: "invalid_request_error",
          code: "model_not_found",
          param: "model",
        });
      }
      return c.json(ollamaShow(model));
    }) as Handler<GatewayEnv>,
  };
}

/** Ollama's model management is for the operator of an Ollama server, not for API keys. */
export const managementRefused: Handler<GatewayEnv> = (c) => {
  throw new GatewayError(
    `"${c.req.method} ${c.req.path}" manages models and is not available to API keys; ` +
      "manage models on the backend itself",
    { status: 403, type: "permission_error", code: "management_not_allowed" },
  );
};
