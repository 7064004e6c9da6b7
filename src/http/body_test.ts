import { assert, assertEquals } from "../../tests/assert.ts";
import { GatewayError } from "../errors.ts";
import { readJson } from "./body.ts";

const LIMITS = { maxBytes: 1 << 20 };

function post(bytes: Uint8Array<ArrayBuffer>): Request {
  return new Request("http://gw/v1/chat/completions", {
    method: "POST",
    headers: { "content-length": String(bytes.length) },
    body: bytes,
  });
}

const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);

Deno.test("readJson() refuses every byte sequence that is not UTF-8 with 400, as a fatal decoder would", async () => {
  const json = (inner: number[]) =>
    Uint8Array.from([...utf8('{"content":"'), ...inner, ...utf8('"}')]);
  const invalid = [
    [0xff], // never in UTF-8
    [0xc3, 0x28], // a lead byte without its continuation
    [0xed, 0xa0, 0x80], // an encoded surrogate
    [0xc0, 0xaf], // overlong
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    [0xe2, 0x82], // cut short
  ];
  for (const bytes of invalid) {
    const error = await readJson(post(json(bytes)), LIMITS).catch((err) => err);
    assert(error instanceof GatewayError, `${bytes}`);
    assertEquals([error.status, error.message], [400, "Request body is not valid JSON"]);
    // The verdict of WHATWG's fatal decoder, which the check stands for.
    let fatal = false;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(json(bytes));
    } catch {
      fatal = true;
    }
    assert(fatal, `${bytes}`);
  }
});

Deno.test("readJson() reads UTF-8 bodies whole: multi-byte text, a byte-order mark, blank bodies", async () => {
  const text = "héllo 日本語 🦕 \u2028";
  assertEquals(await readJson(post(utf8(JSON.stringify({ content: text }))), LIMITS), {
    content: text,
  });
  const bom = Uint8Array.from([0xef, 0xbb, 0xbf, ...utf8('{"a":1}')]);
  assertEquals(await readJson(post(bom), LIMITS), { a: 1 });
  assertEquals(await readJson(post(utf8(" \n")), LIMITS), undefined);
});
