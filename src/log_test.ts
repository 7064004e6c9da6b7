import { assertEquals } from "../tests/assert.ts";
import { LineBuffer } from "./log.ts";

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
