/** Human output of the CLI: aligned tables and compact values. */

/** Renders rows as an aligned table with a header line. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((row) =>
    row.map((cell) => (cell === null || cell === undefined ? "-" : String(cell)))
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd();
  return [line(headers), ...cells.map(line)].join("\n");
}

/** Formats a limit: null means unlimited. */
export function limit(value: unknown): string {
  return value === null || value === undefined ? "unlimited" : String(value);
}

/** Renders one record as `field: value` lines. */
export function details(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record).map(([key, value]) => {
    const text = value === null || value === undefined
      ? "-"
      : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);
    return `${key.padEnd(width)}  ${text}`;
  }).join("\n");
}
