import { assertEquals } from "../tests/assert.ts";
import { createLogger, LineBuffer } from "./log.ts";

Deno.test("LineBuffer: lines are written in batches, in order, and all of them on flush", async () => {
  const writes: string[] = [];
  const buffer = new LineBuffer((bytes) => writes.push(new TextDecoder().decode(bytes)), 10);
  buffer.write("a");
  buffer.write("b");
  assertEquals(writes, [], "nothing is written per line");
  await new Promise((resolve) => setTimeout(resolve, 30));
  assertEquals(writes, ["a\nb\n"]);
  buffer.write("c");
  buffer.flush();
  assertEquals(writes, ["a\nb\n", "c\n"]);
  const long = "x".repeat(70_000);
  buffer.write(long);
  assertEquals(writes.length, 3, "a full buffer is written at once");
});

Deno.test("createLogger: one JSON object per line with time, level, message and the fields", () => {
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  log.debug("hidden", { a: 1 });
  log.info("plain");
  log.warn('quote " and \n newline', { n: 1, text: 'a"b', gone: undefined, nested: { x: [1] } });
  assertEquals(lines.length, 2, "below the level nothing is written");
  const [plain, rich] = lines.map((line) => JSON.parse(line));
  assertEquals(Object.keys(plain), ["time", "level", "message"]);
  assertEquals([plain.level, plain.message], ["info", "plain"]);
  assertEquals(new Date(plain.time).toISOString(), plain.time);
  assertEquals(rich.level, "warn");
  assertEquals(rich.message, 'quote " and \n newline');
  assertEquals([rich.n, rich.text, "gone" in rich, rich.nested], [1, 'a"b', false, { x: [1] }]);
  assertEquals(lines.every((line) => !line.includes("\n")), true, "one line each");
});
