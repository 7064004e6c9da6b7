import { assert, assertEquals } from "../tests/assert.ts";
import { backendConfig } from "../tests/fakes/config_adapter.ts";
import { createRedactor } from "./redact.ts";

const redact = createRedactor([
  backendConfig("gpu", { baseUrl: "http://gpu.internal:8000", apiKey: "sk-backend-secret-1" }),
  backendConfig("cloud", { baseUrl: "https://api.example.com" }),
]);

Deno.test("redact: backend hosts, addresses, ports and keys go in every form", () => {
  const text = "worker 10.0.0.5 (host gpu.internal, port 8000, Port=8000); see " +
    "http://gpu.internal:8000/status, [fd00::1]:8000, fd00::1, other-box:8000, " +
    "api.example.com and key sk-backend-secret-1";
  const clean = redact(text);
  for (
    const leak of ["10.0.0.5", "gpu.internal", "8000", "fd00", "api.example.com", "sk-backend"]
  ) {
    assert(!clean.includes(leak), `${leak} in: ${clean}`);
  }
  assert(clean.includes("port [redacted]"), clean);
  assert(clean.includes("other-box:[redacted]"), clean);
});

Deno.test("redact: numbers that are not ports stay as the backend wrote them", () => {
  const message = "This model's maximum context length is 8000 tokens; you asked for 8001 " +
    "(8000 + 1) at 10:00:00";
  assertEquals(redact(message), message);
});
