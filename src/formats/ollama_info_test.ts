import { assert, assertEquals, assertNotEquals } from "../../tests/assert.ts";
import {
  OLLAMA_API_VERSION,
  ollamaPs,
  ollamaShow,
  ollamaTags,
  ollamaVersion,
} from "./ollama_info.ts";

const models = [
  { id: "qwen3:8b", created: 1700000000, owned_by: "vllm-a" },
  { id: "gpt-4o-mini", created: 1710000000, owned_by: "openai" },
];

Deno.test("ollamaTags() lists each model as Ollama does, with a stable 64-hex digest", () => {
  const tags = ollamaTags(models);
  assertEquals(tags.models.length, 2);
  const [first, second] = tags.models;
  assertEquals(first.name, "qwen3:8b");
  assertEquals(first.model, "qwen3:8b");
  assertEquals(first.modified_at, "2023-11-14T22:13:20.000Z");
  assertEquals(first.size, 0);
  assertEquals(first.details, {
    parent_model: "",
    format: "",
    family: "",
    families: [],
    parameter_size: "",
    quantization_level: "",
  });
  assert(/^[0-9a-f]{64}$/.test(first.digest as string), String(first.digest));
  assertEquals(ollamaTags(models).models[0].digest, first.digest);
  assertNotEquals(second.digest, first.digest);
  assertEquals(ollamaTags([]), { models: [] });
});

Deno.test("ollamaTags() survives a created time that is not a sane number", () => {
  for (const created of [NaN, Infinity, -1e20, 1e20]) {
    const [entry] = ollamaTags([{ id: "m", created, owned_by: "x" }]).models;
    assertEquals(entry.modified_at, "1970-01-01T00:00:00.000Z", String(created));
  }
});

Deno.test("ollamaShow() answers what ollama-js show() reads, capabilities defaulting to completion", () => {
  const show = ollamaShow(models[0]);
  assertEquals(show.capabilities, ["completion"]);
  assertEquals(show.model_info, {});
  assertEquals(show.modified_at, "2023-11-14T22:13:20.000Z");
  for (const field of ["license", "modelfile", "parameters", "template"]) {
    assertEquals(show[field], "", field);
  }
  const tools = ollamaShow({ ...models[0], capabilities: ["completion", "tools", "vision"] });
  assertEquals(tools.capabilities, ["completion", "tools", "vision"]);
});

Deno.test("ollamaPs() lists models as loaded without expiry or known size", () => {
  const [entry] = ollamaPs([models[1]]).models;
  assertEquals(entry.name, "gpt-4o-mini");
  assertEquals(entry.size_vram, 0);
  assertEquals(entry.context_length, 0);
  assert(Date.parse(entry.expires_at as string) > Date.parse("9000-01-01T00:00:00Z"));
  assertEquals("modified_at" in entry, false);
  assertEquals(entry.digest, ollamaTags([models[1]]).models[0].digest);
});

Deno.test("ollamaVersion() reports the Ollama API level the translation follows", () => {
  assertEquals(ollamaVersion(), { version: OLLAMA_API_VERSION });
  assert(/^\d+\.\d+\.\d+$/.test(OLLAMA_API_VERSION));
  assertEquals(ollamaVersion("0.5.1"), { version: "0.5.1" });
});
