/** Backends: state, slots in use of the maximum, queues and recent numbers, refreshed live. */
import type { BackendView, ModelView } from "./api.ts";
import { ms, Problem, Table } from "./parts.tsx";
import { useApi } from "./use_api.ts";

const REFRESH_MS = 2_000;

/** "in 42 s" until an ejection ends. */
function until(iso: string | null): string {
  if (!iso) return "–";
  const seconds = Math.max(0, Math.ceil((Date.parse(iso) - Date.now()) / 1000));
  return `${iso.slice(11, 19)} (in ${seconds} s)`;
}

/** The state cell: ejected backends stand out. */
function State(props: { backend: BackendView }) {
  const { backend } = props;
  if (backend.state === "healthy") return <span>healthy</span>;
  return <span class="error" title={backend.last_error ?? ""}>ejected</span>;
}

/** Backends and the models they serve, with their queues. */
export function BackendsPage() {
  const backends = useApi<{ data: BackendView[] }>("/backends", REFRESH_MS);
  const models = useApi<{ data: ModelView[] }>("/models", REFRESH_MS);
  return (
    <section>
      <Problem message={backends.error.value ?? models.error.value} />
      <Table
        head={[
          "Backend",
          "Type",
          "State",
          "In flight / max",
          "Queued",
          "Failures in a row",
          "Ejected until",
          "Recent requests",
          "Errors",
          "p50",
          "p95",
          "Models",
        ]}
        rows={(backends.data.value?.data ?? []).map((b) => [
          b.name,
          b.type,
          <State key="state" backend={b} />,
          `${b.in_flight} / ${b.max_concurrency ?? "∞"}`,
          b.queued,
          b.consecutive_failures,
          until(b.ejected_until),
          b.recent.requests,
          b.recent.errors,
          ms(b.recent.p50_ms),
          ms(b.recent.p95_ms),
          b.models.join(", ") || "–",
        ])}
        empty="No backends configured"
      />
      <h2>Models</h2>
      <Table
        head={["Model", "Backends", "Queued", "Aliases", "Fallbacks"]}
        rows={(models.data.value?.data ?? []).map((m) => [
          m.id,
          m.backends.join(", "),
          m.queued,
          m.aliases.join(", ") || "–",
          m.fallbacks.join(", ") || "–",
        ])}
        empty="No models discovered yet"
      />
    </section>
  );
}
