/** The accounting invariant after a mixed soak with faults, at a size CI affords. */
import { assert, assertEquals } from "../assert.ts";
import { runAccountingSoak } from "./soak.ts";

Deno.test("accounting soak: 50 keys, every format, cancels, a dying and a refusing backend, a Redis restart and a kill -9: the books balance", async () => {
  // The invariant is checked inside: it throws when the books do not balance.
  const { report, answers, inFlightAtKill, redisFailures } = await runAccountingSoak({
    keys: 50,
    rounds: { pair: 6, process: 3, after: 2 },
    inFlight: 10,
    concurrency: 12,
  });
  // Every request got an answer, and none was a failure of the gateway itself.
  assertEquals(Object.keys(answers).filter((a) => !/^(200|429)( |$)/.test(a)), []);
  assert(answers["429 insufficient_quota"] > 0, "tight quotas were reached");
  // Every fault the soak claims to inject happened.
  assertEquals(inFlightAtKill, 10, "streams were open on the process when it was killed");
  assert(report.lost <= inFlightAtKill);
  assert(redisFailures > 0, "requests arrived while Redis was down");
  assert(report.failovers > 0, "a refused connection moved a request to another backend");
  for (const outcome of ["completed", "client_cancelled", "upstream_error"]) {
    assert(report.outcomes[outcome] > 0, `no record ended ${outcome}`);
  }
  for (const endpoint of ["chat", "responses", "ollama_chat", "embeddings"]) {
    assert(report.endpoints[endpoint] > 0, `no ${endpoint} request was recorded`);
  }
});
