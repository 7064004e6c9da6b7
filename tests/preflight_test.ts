import { assert, assertEquals } from "./assert.ts";

const SCRIPT = new URL("./preflight.ts", import.meta.url).pathname;

async function preflight(env: Record<string, string>) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", SCRIPT],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("deno task test says in one line what is missing and how to get it", async () => {
  const missing = await preflight({ PATH: "/nonexistent", CHROMIUM_PATH: "/nonexistent/chromium" });
  assertEquals(missing.code, 1);
  const lines = missing.stderr.trim().split("\n");
  assertEquals(lines.length, 1, missing.stderr);
  assert(lines[0].includes("redis-server and chromium"), lines[0]);
  assert(lines[0].includes("apt-get install -y redis-server chromium"), lines[0]);
  // With both present (the suite is running, so they are), it stays silent.
  const present = await preflight({
    PATH: Deno.env.get("PATH") ?? "",
    CHROMIUM_PATH: Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium",
  });
  assertEquals([present.code, present.stderr], [0, ""]);
});
