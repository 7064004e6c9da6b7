/** Small shared pieces: tables, bar charts, number formatting, error banners. */
import type { ComponentChildren } from "preact";

/** Formats a count compactly. */
export function count(value: number | null | undefined): string {
  if (value === null || value === undefined) return "∞";
  return value >= 1e6
    ? `${(value / 1e6).toFixed(1)}M`
    : value >= 1e4
    ? `${(value / 1e3).toFixed(1)}k`
    : String(value);
}

/** Formats milliseconds; null as a dash. */
export const ms = (value: number | null) => (value === null ? "–" : `${Math.round(value)} ms`);

/** A data table; cells are rendered as text by Preact, so user text is always escaped. */
export function Table(props: { head: string[]; rows: ComponentChildren[][]; empty?: string }) {
  if (props.rows.length === 0) return <p class="muted">{props.empty ?? "Nothing yet"}</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>{props.head.map((h) => <th key={h} scope="col">{h}</th>)}</tr>
        </thead>
        <tbody>
          {props.rows.map((row, i) => (
            <tr key={i}>{row.map((cell, j) => <td key={j}>{cell}</td>)}</tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A bar chart drawn as SVG: one bar per point, labelled for screen readers. */
export function Bars(props: { points: { label: string; value: number }[]; title: string }) {
  const max = Math.max(1, ...props.points.map((p) => p.value));
  const width = 600;
  const height = 140;
  // At least 12 slots, so a chart with one point shows one bar, not a wall.
  const bar = width / Math.max(12, props.points.length);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height + 20}`} role="img" aria-label={props.title}>
        {props.points.map((point, i) => {
          const h = (point.value / max) * height;
          return (
            <rect x={i * bar + 2} y={height - h} width={Math.max(1, bar - 4)} height={h}>
              <title>{`${point.label}: ${point.value}`}</title>
            </rect>
          );
        })}
        <text x="0" y={height + 16}>{props.points[0]?.label ?? ""}</text>
        <text x={width} y={height + 16} text-anchor="end">{props.points.at(-1)?.label ?? ""}</text>
      </svg>
      <figcaption>{props.title} (max {max})</figcaption>
    </figure>
  );
}

/** A card with a big number. */
export function Stat(props: { label: string; value: string }) {
  return (
    <div class="stat">
      <span class="stat-value">{props.value}</span>
      <span class="stat-label">{props.label}</span>
    </div>
  );
}

/** An error message region. */
export function Problem(props: { message: string | null }) {
  return props.message ? <p class="error" role="alert">{props.message}</p> : null;
}
