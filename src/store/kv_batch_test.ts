import { assert, assertEquals } from "../../tests/assert.ts";
import {
  keyBytes,
  KV_LIMITS,
  kvCounter,
  type KvSum,
  type KvWrite,
  planChunks,
  tooLarge,
  valueBytes,
} from "./kv_batch.ts";
import { commitWrites } from "./kv_commit.ts";

const sum = (key: Deno.KvKey, amount: number): KvSum => ({ counter: kvCounter(key), amount });

async function commits(kv: Deno.Kv, key: Deno.KvKey, value: unknown): Promise<boolean> {
  try {
    await kv.atomic().set(key, value).commit();
    return true;
  } catch {
    return false;
  }
}

Deno.test("keyBytes() measures keys as KV encodes them: a 2,048-byte key is the longest it takes", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    for (const filler of ["x", "é", "\u0000", "🙂"]) {
      // Grow the last part until keyBytes() says the key is exactly at the limit.
      let text = "";
      while (keyBytes(["a", 7, text + filler]) <= KV_LIMITS.keyBytes - 8) text += filler;
      while (keyBytes(["a", 7, text + "x"]) <= KV_LIMITS.keyBytes) text += "x";
      assertEquals(keyBytes(["a", 7, text]), KV_LIMITS.keyBytes);
      assert(await commits(kv, ["a", 7, text], 1), `a 2,048-byte key (${filler}) is taken`);
      assert(!(await commits(kv, ["a", 7, text + "x"], 1)), "one byte more is refused");
    }
  } finally {
    kv.close();
  }
});

Deno.test("valueBytes() never measures a value smaller than KV does", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const samples: unknown[] = [
      { a: 1.5, b: null, c: true, d: "é".repeat(100), e: [0.1, 2 ** 40, -1] },
      "x".repeat(1000),
      "🙂".repeat(1000),
      { nested: { deep: { deeper: [1, 2, 3, "x"] } }, n: Number.MAX_VALUE },
    ];
    for (const sample of samples) {
      // Pad the value until valueBytes() says it is at the limit: KV must take it.
      const padded = { sample, pad: "" };
      while (valueBytes({ ...padded, pad: padded.pad + "x".repeat(64) }) <= KV_LIMITS.valueBytes) {
        padded.pad += "x".repeat(64);
      }
      assert(await commits(kv, ["v"], padded), JSON.stringify(sample).slice(0, 40));
    }
  } finally {
    kv.close();
  }
});

Deno.test("planChunks() packs items so every atomic operation is within KV's limits", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const items: KvWrite[] = [];
    // Bound by mutations: 3,000 distinct counters.
    for (let i = 0; i < 3000; i++) items.push({ sets: [], sums: [sum(["s", i], 1)] });
    // Bound by key bytes: 200 keys of 1,900 bytes.
    for (let i = 0; i < 200; i++) {
      items.push({ sets: [{ key: ["k", i, "k".repeat(1900)], value: i }], sums: [] });
    }
    // Bound by total bytes: 100 values of 30,000 bytes.
    for (let i = 0; i < 100; i++) {
      items.push({ sets: [{ key: ["v", i], value: "v".repeat(15_000) }], sums: [] });
    }
    // Merged: 1,000 additions to one counter (built apart each time) take one mutation.
    for (let i = 0; i < 1000; i++) items.push({ sets: [], sums: [sum(["total"], 2)] });
    assert(items.every((item) => tooLarge(item) === null));
    const chunks = planChunks(items);
    assert(chunks.length >= 10, `${chunks.length} chunks`);
    let written = 0;
    const report = await commitWrites(kv, items, {
      committed: (done) => written += done.length,
      rejected: (_, error) => {
        throw error;
      },
    });
    assertEquals(report, { remaining: [], error: null });
    assertEquals(written, items.length);
    assertEquals((await kv.get<Deno.KvU64>(["total"])).value?.value, 2000n);
    assertEquals((await kv.get<Deno.KvU64>(["s", 2999])).value?.value, 1n);
    assertEquals((await kv.get(["v", 99])).value, "v".repeat(15_000));
  } finally {
    kv.close();
  }
});

Deno.test("tooLarge() names items no atomic operation can take", () => {
  assertEquals(
    tooLarge({ sets: [{ key: ["a"], value: "x".repeat(40_000) }], sums: [] }),
    "a value is larger than KV allows",
  );
  assertEquals(
    tooLarge({ sets: [], sums: [sum(["a", "x".repeat(3000)], 1)] }),
    "a key is longer than KV allows",
  );
  const many: KvWrite = { sets: [], sums: [] };
  for (let i = 0; i < 1001; i++) many.sums.push(sum(["n", i], 1));
  assertEquals(tooLarge(many), "it needs more than one atomic operation");
  for (const amount of [-1, 1.5, Number.NaN]) {
    assertEquals(
      tooLarge({ sets: [], sums: [sum(["b"], amount)] }),
      "an amount is negative or not a whole number",
    );
  }
  assertEquals(tooLarge({ sets: [{ key: ["a"], value: 1 }], sums: [sum(["b"], 1)] }), null);
});

Deno.test("commitWrites() splits a batch KV refuses until the refused item is alone; the others are written", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const items: KvWrite[] = [];
    for (let i = 0; i < 500; i++) {
      items.push({ sets: [{ key: ["item", i], value: i }], sums: [sum(["count"], 1)] });
    }
    // A value KV cannot store: the whole batch is refused at commit.
    items[321].sets[0].value = () => "not storable";
    const rejected: KvWrite[] = [];
    let committed = 0;
    const report = await commitWrites(kv, items, {
      committed: (done) => committed += done.length,
      rejected: (item) => rejected.push(item),
    });
    assertEquals(report, { remaining: [], error: null });
    assertEquals(rejected, [items[321]]);
    assertEquals(committed, 499);
    assertEquals((await kv.get<Deno.KvU64>(["count"])).value?.value, 499n, "nothing counted twice");
    assertEquals((await kv.get(["item", 320])).value, 320);
    assertEquals((await kv.get(["item", 321])).versionstamp, null);
  } finally {
    kv.close();
  }
});

Deno.test("commitWrites() stops after a few failures that are not refusals and keeps every item", async () => {
  const kv = await Deno.openKv(":memory:");
  kv.close();
  const items: KvWrite[] = [...Array(100).keys()].map((i) => ({
    sets: [{ key: ["item", i], value: i }],
    sums: [],
  }));
  const report = await commitWrites(kv, items, {
    committed: () => {
      throw new Error("nothing can be committed");
    },
    rejected: () => {
      throw new Error("nothing is refused: KV is away");
    },
  });
  assertEquals(report.remaining, items, "kept in order for the next attempt");
  assert(report.error !== null);
});

Deno.test("planChunks() merges sums to one counter exactly, past what a number holds", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const big = Number.MAX_SAFE_INTEGER;
    const counter = kvCounter(["big"]);
    const items: KvWrite[] = [1, 2, 3].map(() => ({
      sets: [],
      sums: [{ counter, amount: big }, { counter: kvCounter(["small"]), amount: 1 }],
    }));
    const [chunk, ...rest] = planChunks(items);
    assertEquals(rest, []);
    const sums = chunk.mutations().filter((m) => m.type === "sum");
    assertEquals(sums.length, 2, "one mutation per counter");
    await kv.atomic().mutate(...sums).commit();
    assertEquals((await kv.get<Deno.KvU64>(["big"])).value?.value, 3n * BigInt(big));
    assertEquals((await kv.get<Deno.KvU64>(["small"])).value?.value, 3n);
  } finally {
    kv.close();
  }
});
