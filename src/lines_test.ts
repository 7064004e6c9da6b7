import { assertEquals, assertRejects } from "../tests/assert.ts";
import { LineSplitter, LineTooLongError } from "./lines.ts";

const encoder = new TextEncoder();

function splitAll(text: string, cuts: number[], max?: number): string[] {
  const bytes = encoder.encode(text);
  const splitter = new LineSplitter(max);
  const lines: string[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    lines.push(...splitter.push(bytes.slice(start, cut)));
    start = cut;
  }
  const rest = splitter.flush();
  if (rest !== null) lines.push(rest);
  return lines;
}

Deno.test("LineSplitter: CR, LF and CRLF all end a line, wherever the bytes are cut", () => {
  const text = "a\r\nb\rc\nd\r\re🙂\r\nlast";
  const expected = ["a", "b", "c", "d", "", "e🙂", "last"];
  const bytes = encoder.encode(text).length;
  for (let cut = 0; cut <= bytes; cut++) {
    assertEquals(splitAll(text, [cut]), expected, `cut at byte ${cut}`);
    for (let second = cut; second <= bytes; second++) {
      assertEquals(splitAll(text, [cut, second]), expected, `cuts at ${cut} and ${second}`);
    }
  }
});

Deno.test("LineSplitter: a line longer than the limit throws, split or whole", async () => {
  const splitter = new LineSplitter(10);
  assertEquals(splitter.push(encoder.encode("12345")), []);
  await assertRejects(
    () => Promise.resolve().then(() => splitter.push(encoder.encode("678901"))),
    LineTooLongError,
  );
  // Good lines before the over-long one are still returned; the next call throws.
  const other = new LineSplitter(10);
  assertEquals(other.push(encoder.encode("ok\n12345678901")), ["ok"]);
  await assertRejects(() => Promise.resolve().then(() => other.flush()), LineTooLongError);
  assertEquals(new LineSplitter(10).push(encoder.encode("1234567890\n")), ["1234567890"]);
});
