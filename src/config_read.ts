/** Small typed readers over a parsed YAML tree; every failure names the path in the file. */
import { ConfigError } from "./config_env.ts";

/** A YAML mapping with the path it was found at. */
export class Section {
  constructor(readonly path: string, readonly data: Record<string, unknown>) {}

  /** Opens a YAML node as a section; a missing node is an empty section. */
  static of(path: string, value: unknown): Section {
    if (value === undefined || value === null) return new Section(path, {});
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new ConfigError(path, "expected a mapping");
    }
    return new Section(path, value as Record<string, unknown>);
  }

  /** Path of a field inside this section. */
  at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  /** A nested mapping. */
  section(key: string): Section {
    return Section.of(this.at(key), this.data[key]);
  }

  /** Refuses keys this section does not know, which catches typos such as `base-url`. */
  only(keys: readonly string[]): this {
    for (const key of Object.keys(this.data)) {
      if (!keys.includes(key)) {
        throw new ConfigError(
          this.at(key),
          `unknown setting (expected one of: ${keys.join(", ")})`,
        );
      }
    }
    return this;
  }

  /** An optional string. */
  string(key: string): string | undefined {
    const value = this.data[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    if (typeof value !== "string") throw new ConfigError(this.at(key), "expected a string");
    return value;
  }

  /** An optional number within bounds; numeric strings (from `${ENV}`) are accepted. */
  number(key: string, bounds: { min: number; max: number; integer?: boolean }): number | undefined {
    const raw = this.data[key];
    if (raw === undefined || raw === null) return undefined;
    const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new ConfigError(this.at(key), "expected a number");
    }
    if (bounds.integer !== false && !Number.isInteger(value)) {
      throw new ConfigError(this.at(key), "expected a whole number");
    }
    if (value < bounds.min || value > bounds.max) {
      throw new ConfigError(this.at(key), `expected a number from ${bounds.min} to ${bounds.max}`);
    }
    return value;
  }

  /** An optional boolean; "true"/"false" strings are accepted. */
  boolean(key: string): boolean | undefined {
    const value = this.data[key];
    if (value === undefined || value === null) return undefined;
    if (value === true || value === "true") return true;
    if (value === false || value === "false") return false;
    throw new ConfigError(this.at(key), "expected true or false");
  }

  /** An optional list of strings. */
  strings(key: string): string[] | undefined {
    const value = this.data[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) throw new ConfigError(this.at(key), "expected a list");
    return value.map((item, index) => {
      if (typeof item !== "string" || item === "") {
        throw new ConfigError(`${this.at(key)}[${index}]`, "expected a non-empty string");
      }
      return item;
    });
  }

  /** An optional list of mappings. */
  sections(key: string): Section[] | undefined {
    const value = this.data[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) throw new ConfigError(this.at(key), "expected a list");
    return value.map((item, index) => Section.of(`${this.at(key)}[${index}]`, item));
  }

  /** One of a closed set of strings. */
  oneOf<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    if (!(choices as readonly string[]).includes(value)) {
      throw new ConfigError(this.at(key), `expected one of: ${choices.join(", ")}`);
    }
    return value as T;
  }

  /** An http(s) URL without a trailing slash, query or fragment. */
  url(key: string): string | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError(this.at(key), "expected an http(s) URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(this.at(key), "expected an http(s) URL");
    }
    if (url.search || url.hash || url.username || url.password) {
      throw new ConfigError(this.at(key), "expected a URL without query, fragment or credentials");
    }
    return url.href.replace(/\/+$/, "");
  }
}
