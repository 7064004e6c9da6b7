/** A step of the client pipeline: reads and sets the request's context, or throws to refuse. */
import type { Context } from "hono";
import type { GatewayEnv } from "../context.ts";

/**
 * One step. Synchronous where it can be (most requests need no wait): a step returns a promise
 * only when it really waits, so the pipeline awaits only then.
 */
export type Step = (c: Context<GatewayEnv>) => void | Promise<void>;
