/** `${NAME}` and `${NAME:-default}` substitution in config text. */

/** Thrown when the config cannot be used; `path` names the place in the file. */
export class ConfigError extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(path ? `Invalid config at "${path}": ${problem}` : `Invalid config: ${problem}`);
    this.name = "ConfigError";
  }
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces environment references in every string of a parsed YAML tree (never in keys), so a
 * value can never change the document's structure. An unset variable without a default is an error.
 */
export function substituteEnv(
  value: unknown,
  env: (name: string) => string | undefined,
  path = "",
): unknown {
  if (typeof value === "string") {
    return value.replace(REFERENCE, (_match, name: string, fallback: string | undefined) => {
      const found = env(name);
      if (found !== undefined && found !== "") return found;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(path, `environment variable "${name}" is not set`);
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => substituteEnv(item, env, `${path}[${index}]`));
  }
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = substituteEnv(item, env, path ? `${path}.${key}` : key);
    }
    return out;
  }
  return value;
}
