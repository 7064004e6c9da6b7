/** Per-key access rules: the IP allowlist and the model allowlist. */
import { GatewayError } from "../errors.ts";
import { globRegExp } from "../glob.ts";
import { createIpMatcher } from "../net/ip.ts";
import type { KeyRecord } from "../store/model.ts";
import type { Step } from "./step.ts";

type IpMatcher = ReturnType<typeof createIpMatcher>;
const matchers = new WeakMap<KeyRecord, IpMatcher>();

/** Refuses a request from an address outside the key's allowlist (empty list = any address). */
export function ipAllowlistStep(): Step {
  return function checkIpAllowlist(c) {
    const key = c.get("key");
    if (key.allowed_ips.length > 0) {
      let matches = matchers.get(key);
      if (!matches) {
        // Entries were validated when stored; a bad one can only match nothing.
        matches = createIpMatcher(key.allowed_ips.filter((entry) => {
          try {
            createIpMatcher([entry]);
            return true;
          } catch {
            return false;
          }
        }));
        matchers.set(key, matches);
      }
      if (!matches(c.get("clientIpBytes"))) {
        throw new GatewayError(`Requests from ${c.get("clientIp")} are not allowed for this key`, {
          status: 403,
          type: "permission_error",
          code: "ip_not_allowed",
        });
      }
    }
  };
}

const globs = new Map<string, RegExp>();

/** Whether a key may use a model: its patterns are names with `*` wildcards; none = all. */
export function modelAllowed(key: KeyRecord, model: string): boolean {
  if (key.allowed_models.length === 0) return true;
  return key.allowed_models.some((pattern) => {
    if (pattern === "*" || pattern === model) return true;
    if (!pattern.includes("*")) return false;
    let regex = globs.get(pattern);
    if (!regex) {
      regex = globRegExp(pattern);
      if (globs.size < 10_000) globs.set(pattern, regex);
    }
    return regex.test(model);
  });
}

/** The 403 for a model outside the key's list. */
export function modelNotAllowed(model: string): GatewayError {
  return new GatewayError(`This key may not use model "${model}"`, {
    status: 403,
    type: "permission_error",
    code: "model_not_allowed",
    param: "model",
  });
}
