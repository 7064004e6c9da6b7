/** Shared test plumbing: a gateway on a free loopback port built from YAML text. */
import OpenAI from "openai";
import { parseConfig } from "../src/config.ts";
import { createLogger, type Logger, silentLogger } from "../src/log.ts";
import { type RunningGateway, startGateway } from "../src/server.ts";

/** A gateway started for one test, with its captured log lines. */
export interface TestGateway extends RunningGateway {
  logs: string[];
  client(apiKey?: string, options?: { maxRetries?: number }): OpenAI;
}

/** Starts a gateway from YAML (port 0 on 127.0.0.1 unless the YAML says otherwise). */
export async function startTestGateway(
  yaml: string,
  env: Record<string, string> = {},
): Promise<TestGateway> {
  const config = parseConfig(yaml, (name) => env[name]);
  config.server.host = "127.0.0.1";
  config.server.port = 0;
  const logs: string[] = [];
  const log: Logger = createLogger("debug", (line) => logs.push(line));
  const gateway = await startGateway({ config, log });
  return {
    ...gateway,
    logs,
    client(apiKey = "unused", options = {}) {
      return new OpenAI({
        apiKey,
        baseURL: `${gateway.url}/v1`,
        maxRetries: options.maxRetries ?? 0,
        timeout: 10_000,
      });
    },
  };
}

/** Reads an SSE body into its `data:` payloads. */
export async function readSse(response: Response): Promise<string[]> {
  const text = await response.text();
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
}

/** Waits until `check` is true, polling every 10 ms, for at most `ms`. */
export async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export { silentLogger };
