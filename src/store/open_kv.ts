/** Opens the configured Deno KV: a file path (directory created), ":memory:", or a KV Connect URL. */
import { dirname } from "node:path";

/** Opens KV for `storage.kv`. */
export async function openKv(location: string): Promise<Deno.Kv> {
  if (location === ":memory:" || /^https?:\/\//.test(location)) return await Deno.openKv(location);
  await Deno.mkdir(dirname(location), { recursive: true });
  return await Deno.openKv(location);
}
