/** One backend at run time: its adapter, its slots, its health and its recent numbers. */
import type { Adapter } from "../../adapters/types.ts";
import { RecentStats } from "./backend_stats.ts";
import type { Health } from "./health.ts";

/** A backend as the dispatcher and the prober see it. */
export class Backend {
  readonly adapter: Adapter;
  readonly name: string;
  readonly health: Health;
  readonly recent = new RecentStats();
  /** Requests holding a slot: sent and not yet ended. */
  inFlight = 0;

  constructor(adapter: Adapter, health: Health) {
    this.adapter = adapter;
    this.name = adapter.config.name;
    this.health = health;
  }

  /** 0 when unlimited. */
  get maxConcurrency(): number {
    return this.adapter.config.maxConcurrency;
  }

  get weight(): number {
    return this.adapter.config.weight;
  }

  /** A slot is free. */
  hasRoom(): boolean {
    const max = this.adapter.config.maxConcurrency;
    return max === 0 || this.inFlight < max;
  }

  /** May receive requests at all: not drained (weight 0) and not ejected. */
  usable(): boolean {
    return this.adapter.config.weight > 0 && !this.health.isEjected();
  }

  /** How busy it is: in-flight relative to its slots, or to its weight when unlimited. */
  load(): number {
    const max = this.adapter.config.maxConcurrency;
    return max > 0 ? this.inFlight / max : this.inFlight / this.adapter.config.weight;
  }
}
