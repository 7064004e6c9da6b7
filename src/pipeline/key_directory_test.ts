import { assertEquals } from "../../tests/assert.ts";
import { silentLogger } from "../log.ts";
import { KeyStore } from "../store/key_store.ts";
import { UNLIMITED_DEFAULTS } from "../store/model.ts";
import { generateApiKey, hashApiKey } from "../store/secrets.ts";
import { KeyDirectory, type KeyDirectoryOptions } from "./key_directory.ts";

/** A real KV store that counts its reads, to show which lookups reach KV. */
class CountingStore extends KeyStore {
  reads = 0;
  override get(id: string) {
    this.reads++;
    return super.get(id);
  }
  override version() {
    this.reads++;
    return super.version();
  }
  override hashIndex() {
    this.reads++;
    return super.hashIndex();
  }
}

const defaults = UNLIMITED_DEFAULTS;

/** Two instances on one KV: `other` makes changes; `directory` is this instance's view. */
async function twoInstances(options: Partial<KeyDirectoryOptions> = {}) {
  const kv = await Deno.openKv(":memory:");
  const time = { now: 1_000 };
  const other = new KeyStore({ kv, now: () => time.now });
  const directory = new KeyDirectory({
    store: new KeyStore({ kv, now: () => time.now }),
    log: silentLogger,
    now: () => time.now,
    ...options,
  });
  await directory.start();
  return { kv, time, other, directory };
}

Deno.test("KeyDirectory: a flood of random keys is refused from memory without reaching KV", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = 1_000;
  const store = new CountingStore({ kv, now: () => clock });
  const issued = await store.create({ name: "real" }, defaults);
  const directory = new KeyDirectory({ store, log: silentLogger, now: () => clock });
  await directory.start();
  store.reads = 0;
  for (let i = 0; i < 1000; i++) {
    assertEquals(await directory.lookup(hashApiKey(generateApiKey())), null);
  }
  assertEquals(store.reads, 0);
  assertEquals((await directory.lookup(issued.record.hash))?.id, issued.record.id);
  assertEquals(store.reads, 1);
  assertEquals((await directory.lookup(issued.record.hash))?.id, issued.record.id);
  assertEquals(store.reads, 1, "a cached record is reused within the refresh interval");
  kv.close();
});

Deno.test("KeyDirectory: a change made by another instance is seen after the refresh interval", async () => {
  const { kv, time, other, directory } = await twoInstances({ refreshMs: 1000 });
  const created = await other.create({ name: "made elsewhere" }, defaults);
  time.now += 1001;
  // The first lookup after the interval starts a refresh and waits for it on a miss.
  assertEquals((await directory.lookup(created.record.hash))?.name, "made elsewhere");
  await other.update(created.record.id, { disabled: true });
  assertEquals(
    (await directory.lookup(created.record.hash))?.disabled,
    false,
    "cached within the interval",
  );
  time.now += 1001;
  await directory.lookup("0".repeat(64));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals((await directory.lookup(created.record.hash))?.disabled, true);
  kv.close();
});

Deno.test("KeyDirectory: changes are applied from the change log, not by reloading every key", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = 1_000;
  const mine = new KeyStore({ kv, now: () => clock });
  const other = new KeyStore({ kv, now: () => clock });
  const [kept, disabled, rotated, deleted] = await Promise.all(
    ["kept", "disabled", "rotated", "deleted"].map((name) => other.create({ name }, defaults)),
  );
  const directory = new KeyDirectory({ store: mine, log: silentLogger, now: () => clock });
  await directory.start();
  assertEquals(directory.reloads, 1);
  for (const key of [kept, disabled, rotated, deleted]) {
    assertEquals((await directory.lookup(key.record.hash))?.id, key.record.id);
  }

  const created = await other.create({ name: "created" }, defaults);
  await other.update(disabled.record.id, { disabled: true });
  const rotation = await other.rotate(rotated.record.id, 0);
  await other.delete(deleted.record.id);
  clock += 1001;
  await directory.lookup("0".repeat(64));
  await new Promise((resolve) => setTimeout(resolve, 20));

  assertEquals(directory.reloads, 1, "four changes, no whole reload");
  assertEquals((await directory.lookup(created.record.hash))?.name, "created");
  assertEquals((await directory.lookup(disabled.record.hash))?.disabled, true);
  assertEquals(await directory.lookup(rotated.record.hash), null, "the old secret is gone");
  assertEquals((await directory.lookup(rotation.record.hash))?.id, rotated.record.id);
  assertEquals(await directory.lookup(deleted.record.hash), null);
  assertEquals((await directory.lookup(kept.record.hash))?.name, "kept");

  // After a gap longer than the log is trusted for, the next change reloads the whole index.
  clock += 6 * 60_000;
  await other.update(kept.record.id, { name: "renamed" });
  await directory.lookup("0".repeat(64));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(directory.reloads, 2);
  assertEquals((await directory.lookup(kept.record.hash))?.name, "renamed");
  kv.close();
});

Deno.test("KeyDirectory: a change read from the log drops that key's cached record at once", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = 1_000;
  const mine = new KeyStore({ kv, now: () => clock });
  const other = new KeyStore({ kv, now: () => clock });
  const key = await other.create({ name: "edited" }, defaults);
  const directory = new KeyDirectory({ store: mine, log: silentLogger, now: () => clock });
  await directory.start();
  clock += 600;
  assertEquals((await directory.lookup(key.record.hash))?.disabled, false, "cached now");
  await other.update(key.record.id, { disabled: true });
  // The index is due for a refresh; the record cached 401 ms ago would still be fresh.
  clock += 401;
  await directory.lookup("0".repeat(64));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals((await directory.lookup(key.record.hash))?.disabled, true);
  kv.close();
});

/** A store whose next pointer read fails, as KV does when it is briefly away. */
class FlakyStore extends KeyStore {
  failNext = false;
  override pointers(hashes: string[]) {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("KV is away"));
    }
    return super.pointers(hashes);
  }
}

Deno.test("KeyDirectory: a refresh that fails half way leaves its changes for the next one", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = 1_000;
  const mine = new FlakyStore({ kv, now: () => clock });
  const other = new KeyStore({ kv, now: () => clock });
  const directory = new KeyDirectory({ store: mine, log: silentLogger, now: () => clock });
  await directory.start();
  const created = await other.create({ name: "new" }, defaults);
  mine.failNext = true;
  clock += 1001;
  assertEquals(await directory.lookup(created.record.hash), null, "the refresh failed");
  clock += 1001;
  assertEquals((await directory.lookup(created.record.hash))?.name, "new");
  assertEquals(directory.reloads, 1, "recovered from the log, not by a whole reload");
  kv.close();
});

Deno.test("KeyDirectory: a burst of changes past maxPointerReads is read by one whole reload", async () => {
  const { kv, time, other, directory } = await twoInstances({ maxPointerReads: 3 });
  const few = await other.create({ name: "one of few" }, defaults);
  time.now += 1001;
  assertEquals((await directory.lookup(few.record.hash))?.name, "one of few");
  assertEquals(directory.reloads, 1, "one changed pointer: read from the log");
  const many = [];
  for (let i = 0; i < 4; i++) many.push(await other.create({ name: `bulk ${i}` }, defaults));
  time.now += 1001;
  assertEquals((await directory.lookup(many[3].record.hash))?.name, "bulk 3");
  assertEquals(directory.reloads, 2, "four changed pointers: one whole reload");
  for (const key of many) {
    assertEquals((await directory.lookup(key.record.hash))?.id, key.record.id);
  }
  kv.close();
});

Deno.test("KeyStore.changes: lists the changes logged since a time, by the writer's clock", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = 1_000;
  const store = new KeyStore({ kv, now: () => clock });
  const early = await store.create({ name: "early" }, defaults);
  clock = 100_000;
  const late = await store.create({ name: "late" }, defaults);
  assertEquals((await store.changes()).map((c) => c.ids[0]), [early.record.id, late.record.id]);
  assertEquals((await store.changes(50_000)).map((c) => c.ids[0]), [late.record.id]);
  assertEquals((await store.changes(100_000)).map((c) => c.hashes), [[late.record.hash]]);
  kv.close();
});

Deno.test("KeyDirectory: while keys keep changing, the whole index is read again every 10 minutes", async () => {
  const { kv, time, other, directory } = await twoInstances();
  const key = await other.create({ name: "edited" }, defaults);
  // A change and a refresh every minute: the log covers every gap.
  for (let minute = 1; minute <= 11; minute++) {
    time.now += 60_000;
    await other.update(key.record.id, { name: `edit ${minute}` });
    await directory.lookup("0".repeat(64));
    await new Promise((resolve) => setTimeout(resolve, 5));
    assertEquals(directory.reloads, minute < 10 ? 1 : 2, `minute ${minute}`);
  }
  assertEquals((await directory.lookup(key.record.hash))?.name, "edit 11");
  kv.close();
});
