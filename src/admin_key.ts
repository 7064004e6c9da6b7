/** The admin key: from the config, or generated on first start and kept only as a hash. */
import { sha256Hex } from "../admin/auth.ts";
import type { Logger } from "./log.ts";
import { ADMIN_KEY_HASH } from "./store/kv_keys.ts";
import { generateApiKey } from "./store/secrets.ts";

/**
 * Returns the SHA-256 of the admin key. Without `admin.api_key`, the first start generates one,
 * prints it once on stdout and stores only its hash; later starts reuse the hash.
 */
export async function resolveAdminKeyHash(
  kv: Deno.Kv,
  configured: string | null,
  log: Logger,
  print: (line: string) => void = (line) => console.log(line),
): Promise<string> {
  if (configured) return sha256Hex(configured);
  const stored = await kv.get<string>(ADMIN_KEY_HASH);
  if (stored.value) return stored.value;
  const key = generateApiKey().replace(/^mg-/, "mga-");
  const hash = sha256Hex(key);
  const result = await kv.atomic().check(stored).set(ADMIN_KEY_HASH, hash).commit();
  if (!result.ok) return (await kv.get<string>(ADMIN_KEY_HASH)).value!;
  print(`ModelGate generated an admin key (shown once; only its hash is stored):\n\n  ${key}\n`);
  log.warn("admin.api_key is not configured: generated one and printed it once on stdout");
  return hash;
}
