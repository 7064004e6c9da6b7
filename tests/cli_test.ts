import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { startFakeOpenAi } from "./fakes/openai_backend.ts";
import { ADMIN_KEY, startTestGateway, waitFor } from "./helpers.ts";

async function cli(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", "main.ts", ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("cli: create a key, use it, see its usage, disable it, and get 401", async () => {
  const fake = await startFakeOpenAi();
  const gateway = await startTestGateway(`
backends:
  - { name: up, type: vllm, base_url: "${fake.url}", models: [gpt-test] }
`);
  const target = ["--url", gateway.url, "--admin-key", ADMIN_KEY];
  try {
    const created = await cli([
      "key",
      "create",
      "-n",
      "user1",
      "-q",
      "1000000",
      "-r",
      "60",
      ...target,
    ]);
    assertEquals(created.code, 0, created.stderr);
    const key = created.stdout.trim().split("\n").at(-1)!;
    assert(/^mg-[A-Za-z0-9_-]{43}$/.test(key), created.stdout);
    assertStringIncludes(created.stdout, "shown once");
    const id = /^id\s+(\S+)/m.exec(created.stdout)![1];

    const json = await cli(["key", "show", id, "--json", ...target]);
    const shown = JSON.parse(json.stdout);
    assertEquals(shown.quota_tokens, 1_000_000);
    assertEquals(shown.rpm, 60);
    assertEquals(json.stdout.includes(key), false);

    const client = gateway.client(key);
    await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
    });
    await waitFor(async () =>
      JSON.parse((await cli(["key", "show", id, "--json", ...target])).stdout).usage.used_tokens > 0
    );

    const usage = await cli(["usage", "--key", id, "--json", ...target]);
    assertEquals(usage.code, 0, usage.stderr);
    assertEquals(JSON.parse(usage.stdout).data[0].requests, 1);
    const table = await cli(["usage", "--key", id, ...target]);
    assertStringIncludes(table.stdout, "user1");
    const listed = await cli(["key", "list", ...target]);
    assertStringIncludes(listed.stdout, "user1");

    const disabled = await cli(["key", "disable", id, ...target]);
    assertEquals(disabled.code, 0, disabled.stderr);
    const err = await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "hi" }],
    })
      .catch((e) => e);
    assertEquals(err.status, 401);

    const models = await cli(["models", ...target]);
    assertStringIncludes(models.stdout, "gpt-test");
  } finally {
    await gateway.shutdown();
    await fake.close();
  }
});

Deno.test("cli: bad flags, a bad admin key, an unknown id and an unreachable server fail with one line", async () => {
  const gateway = await startTestGateway("");
  try {
    const target = ["--url", gateway.url, "--admin-key", ADMIN_KEY];
    const badFlag = await cli(["key", "create", "-n", "x", "--bogus", ...target]);
    assertEquals(badFlag.code, 2);
    assertStringIncludes(badFlag.stderr, "bogus");
    const badNumber = await cli(["key", "create", "-n", "x", "-q", "lots", ...target]);
    assertEquals(badNumber.code, 2);
    assertStringIncludes(badNumber.stderr, 'Invalid --quota "lots"');
    const noName = await cli(["key", "create", ...target]);
    assertEquals(noName.code, 2);
    const badKey = await cli(["key", "list", "--url", gateway.url, "--admin-key", "nope"]);
    assertEquals(badKey.code, 1);
    assertStringIncludes(badKey.stderr, "Admin key refused");
    const unknown = await cli(["key", "show", "key_missing", ...target]);
    assertEquals(unknown.code, 1);
    assertStringIncludes(unknown.stderr, 'Key "key_missing" does not exist');
    for (const result of [badFlag, badNumber, noName, badKey, unknown]) {
      assertEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
  } finally {
    await gateway.shutdown();
  }
  const down = await cli(["key", "list", "--url", "http://127.0.0.1:9", "--admin-key", "x"]);
  assertEquals(down.code, 1);
  assertStringIncludes(down.stderr, "Cannot reach ModelGate at http://127.0.0.1:9");
});
