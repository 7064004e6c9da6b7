/** `GET /v1/models` and `GET /v1/models/{model}` in OpenAI's list format. */
import type { Context, Handler } from "hono";
import type { GatewayEnv } from "../context.ts";
import { modelNotFound } from "../errors.ts";
import type { ListedModel, Router } from "../routing/types.ts";

/** Decides which models a request may see (all of them until keys restrict it). */
export type ModelFilter = (c: Context<GatewayEnv>, model: string) => boolean;

/** The routing group of the calling key. */
export function groupOf(c: Context<GatewayEnv>): string {
  return c.get("key").group || "default";
}

/** The models of the caller's group it may use, in the router's order. */
export function visibleModels(
  router: Router,
  allowed: ModelFilter,
  c: Context<GatewayEnv>,
): ListedModel[] {
  return router.list(groupOf(c)).filter((model) => allowed(c, model.id));
}

function toOpenAi(model: ListedModel) {
  return { id: model.id, object: "model", created: model.created, owned_by: model.owned_by };
}

/** Lists the models the caller may use. */
export function listModels(router: Router, allowed: ModelFilter): Handler<GatewayEnv> {
  return function listModelsHandler(c) {
    const data = visibleModels(router, allowed, c).map(toOpenAi);
    return c.json({ object: "list", data });
  };
}

/** Describes one model; a model the caller may not use looks the same as one that does not exist. */
export function getModel(router: Router, allowed: ModelFilter): Handler<GatewayEnv> {
  return function getModelHandler(c) {
    // Decoded once, by Hono; the app refuses paths with escapes that do not decode.
    const id = c.req.param("model") ?? "";
    const found = router.list(groupOf(c)).find((m) => m.id === id);
    if (!found || !allowed(c, found.id)) throw modelNotFound(id);
    return c.json(toOpenAi(found));
  };
}
