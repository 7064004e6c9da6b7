import { assertEquals, assertStringIncludes } from "./assert.ts";

async function runMain(args: string[], env: Record<string, string> = {}) {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  });
  const output = await command.output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("main.ts serve: a bad config stops start-up with exit code 2 and one clear line", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(
      path,
      "backends:\n  - name: a\n    type: vllm\n    base_url: not a url\n",
    );
    const result = await runMain(["serve", "--config", path]);
    assertEquals(result.code, 2);
    assertEquals(
      result.stderr.trim(),
      'modelgate: Invalid config at "backends[0].base_url": expected an http(s) URL',
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("main.ts: MODELGATE_CONFIG chooses the file; a missing file is a config error", async () => {
  const result = await runMain([], { MODELGATE_CONFIG: "/nonexistent/modelgate.yaml" });
  assertEquals(result.code, 2);
  assertStringIncludes(result.stderr, '"/nonexistent/modelgate.yaml": not found');
});
