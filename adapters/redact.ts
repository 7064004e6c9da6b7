/**
 * Removes backend addresses and credentials from text a client will see. A backend's error
 * message may name its host, IP or port in any form ("worker 10.0.0.5 (host 10.0.0.5, port
 * 8000)", a URL, `[fd00::1]:8000`); every configured backend's host names, addresses, ports and
 * keys are removed, and so is any URL or IP literal whatsoever. A port number is removed where it
 * stands as a port, so numbers in the message itself ("at most 8000 tokens") stay.
 */
import type { BackendConfig } from "./types.ts";

const MASK = "[redacted]";
const URLS = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()]+/gi;
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g;
const IPV6_BRACKETED = /\[[0-9a-f:.%]+\](?::\d{1,5})?/gi;
/** Bare IPv6: with `::`, or with a hex letter, or all eight groups (times like 10:00:00 stay). */
const IPV6 = /(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])/gi;
const DEFAULT_PORTS = new Set(["80", "443"]);

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Builds the redaction of every configured backend's addresses and secrets. */
export function createRedactor(backends: readonly BackendConfig[]): (text: string) => string {
  // "localhost" names the loopback whatever the configured address says.
  const literals = new Set<string>(["localhost"]);
  const ports = new Set<string>();
  for (const backend of backends) {
    if (backend.apiKey) literals.add(backend.apiKey);
    for (const value of Object.values(backend.headers)) if (value.length >= 8) literals.add(value);
    const url = new URL(backend.baseUrl);
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    literals.add(host);
    if (url.port && !DEFAULT_PORTS.has(url.port)) ports.add(url.port);
  }
  const sorted = [...literals].filter(Boolean).sort((a, b) => b.length - a.length);
  const named = sorted.length > 0
    ? new RegExp(`${sorted.map(escapeRegex).join("|")}(?::\\d{1,5})?`, "gi")
    : null;
  // A configured port is removed where it reads as a port ("port 8000", "port=8000", "gpu:8000"),
  // not wherever the number appears: "a context of 8000 tokens" is the backend's message.
  const portWords = ports.size > 0
    ? new RegExp(
      `(\\bport\\s*[:=]?\\s*|(?<=[\\w\\]]):)(?:${[...ports].join("|")})(?![\\w.])`,
      "gi",
    )
    : null;
  return function redact(text: string): string {
    let clean = text.replace(URLS, MASK);
    if (named) clean = clean.replace(named, MASK);
    clean = clean.replace(IPV6_BRACKETED, MASK).replace(IPV4, MASK).replace(
      IPV6,
      (match) =>
        match.includes("::") || /[a-f]/i.test(match) || match.split(":").length === 8
          ? MASK
          : match,
    );
    if (portWords) clean = clean.replace(portWords, `$1${MASK}`);
    return clean;
  };
}
