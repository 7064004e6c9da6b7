/** Name patterns with `*` wildcards, as keys' model lists and groups' backend lists use them. */

/** Whether a pattern has a wildcard (a plain name must match exactly). */
export function isGlob(pattern: string): boolean {
  return pattern.includes("*");
}

/** Compiles a pattern where `*` matches any run of characters and everything else is literal. */
export function globRegExp(pattern: string): RegExp {
  const source = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`);
}
