/**
 * The admin UI's static files. They are read next to this module, so `deno compile --include
 * admin/dist --include admin/styles.css` embeds them and the binary needs no files beside it.
 */

const ASSETS: Record<string, { path: string; type: string }> = {
  "app.js": { path: "./dist/app.js", type: "text/javascript; charset=utf-8" },
  "app.css": { path: "./styles.css", type: "text/css; charset=utf-8" },
};

const cache = new Map<string, Uint8Array<ArrayBuffer>>();

/** One asset by name (only known names; nothing a client sends becomes a path), or null. */
export async function readAsset(
  name: string,
): Promise<{ body: Uint8Array<ArrayBuffer>; type: string } | null> {
  const asset = ASSETS[name];
  if (!asset) return null;
  let body = cache.get(name);
  if (!body) {
    try {
      body = await Deno.readFile(new URL(asset.path, import.meta.url));
    } catch {
      return null;
    }
    cache.set(name, body);
  }
  return { body, type: asset.type };
}
