/**
 * Runs before the test suite: the tests start a real `redis-server` and a real Chromium, so say in
 * one line what is missing and how to get it, instead of failing half-way through.
 */

async function onPath(command: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if ((await Deno.stat(`${dir}/${command}`)).isFile) return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const missing: string[] = [];
if (!(await onPath("redis-server"))) missing.push("redis-server");
if (!(await exists(Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium"))) missing.push("chromium");
if (missing.length > 0) {
  console.error(
    `modelgate tests need ${missing.join(" and ")}: sudo apt-get install -y ${
      missing.join(" ")
    } (or run "bash .ci/run", which installs them; set CHROMIUM_PATH for another Chromium)`,
  );
  Deno.exit(1);
}
