import { assertEquals, assertRejects } from "../tests/assert.ts";
import { GatewayError } from "../src/errors.ts";
import { createConnectProbe } from "./connect_probe.ts";
import { backendConfig } from "../tests/fakes/config_adapter.ts";

const config = backendConfig("gpu", {
  baseUrl: "http://gpu.internal:8000",
  timeouts: { connectMs: 30, firstByteMs: 60_000, idleMs: 60_000 },
});

Deno.test("connect probe: a host that never accepts fails with 504 after connect_ms", async () => {
  let attempts = 0;
  const probe = createConnectProbe(config, {
    connect: () => {
      attempts++;
      return new Promise(() => {});
    },
  });
  const started = performance.now();
  const err = await assertRejects(() => probe.ensure(), GatewayError);
  assertEquals(err.status, 504);
  assertEquals(err.code, "upstream_timeout");
  assertEquals(attempts, 1);
  const elapsed = performance.now() - started;
  assertEquals(elapsed < 1000, true, `took ${elapsed} ms`);
});

Deno.test("connect probe: a refused connection is a 502 and names no address", async () => {
  const probe = createConnectProbe(config, {
    connect: () => Promise.reject(new Error("Connection refused (os error 111)")),
  });
  const err = await assertRejects(() => probe.ensure(), GatewayError);
  assertEquals(err.status, 502);
  assertEquals(err.message.includes("gpu.internal"), false);
});

Deno.test("connect probe: a warm backend is not probed; concurrent cold calls share one probe", async () => {
  let clock = 0;
  let attempts = 0;
  const probe = createConnectProbe(config, {
    now: () => clock,
    warmMs: 1000,
    connect: (target) => {
      attempts++;
      assertEquals(target, { hostname: "gpu.internal", port: 8000 });
      return Promise.resolve({ close() {} });
    },
  });
  await Promise.all([probe.ensure(), probe.ensure(), probe.ensure()]);
  assertEquals(attempts, 1);
  clock = 500;
  await probe.ensure();
  assertEquals(attempts, 1);
  clock = 1600;
  await probe.ensure();
  assertEquals(attempts, 2);
});
