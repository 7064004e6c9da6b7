/** Runs a script of tests/clients/legacy/ in its own process, with its own import map and lock. */

const DIR = new URL("./legacy/", import.meta.url);

/** Runs `script` with `args`; resolves to its stdout, or throws with its stderr. */
export async function runLegacyClient(script: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      "--config",
      new URL("deno.json", DIR).pathname,
      new URL(script, DIR).pathname,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`${script} failed: ${stderr}`);
  return new TextDecoder().decode(output.stdout);
}
