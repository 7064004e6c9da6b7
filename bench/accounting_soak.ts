/**
 * The accounting soak of the test suite (tests/store/soak.ts) at a larger size: many keys, every
 * format, cancels, a dying and a refusing backend, a Redis restart and a `kill -9` of one of three
 * gateways sharing a KV file. Prints what was sent and recorded, and whether the accounting
 * invariant held, as a budget line.
 */
import { runAccountingSoak, type SoakResult, type SoakSize } from "../tests/store/soak.ts";
import type { SoakReport } from "./soak.ts";

/** The bench size: about 8,000 requests on 500 keys, 100 streams open at the kill. */
export const BENCH_SOAK: SoakSize = {
  keys: 500,
  rounds: { pair: 8, process: 4, after: 4 },
  inFlight: 100,
  concurrency: 32,
};

/** Runs the soak; a broken invariant is a FAIL line, not a crash of the whole bench. */
export async function accountingSoak(
  report: SoakReport,
  size: SoakSize = BENCH_SOAK,
): Promise<SoakResult | { error: string }> {
  const { out, budget } = report;
  out();
  out(
    `## Accounting soak (${size.keys} keys, two in-process gateways and one process on one KV ` +
      `file, Redis restart, kill -9 with ${size.inFlight} streams open)`,
  );
  out();
  let result: SoakResult;
  try {
    result = await runAccountingSoak(size, (line) => console.error(line));
  } catch (err) {
    const error = (err as Error).message.split("\n").slice(0, 12).join("\n");
    out("```");
    out(error);
    out("```");
    budget(false, `accounting invariant holds after the soak (${error.split("\n")[0]})`);
    return { error };
  }
  const { report: books, answers, inFlightAtKill } = result;
  out("| requests sent | admitted | records | tokens | lost at the kill | open at the kill | s |");
  out("|---|---|---|---|---|---|---|");
  out(
    `| ${result.sent} | ${books.answered} | ${books.records} | ${books.tokens} | ${books.lost} | ` +
      `${inFlightAtKill} | ${result.seconds.toFixed(1)} |`,
  );
  out();
  out(`Answers: ${tally(answers)}`);
  out(`Records by outcome: ${tally(books.outcomes)}; by format: ${tally(books.endpoints)}`);
  out(
    `Failovers: ${books.failovers}; rate-limit checks while Redis was down: ${result.redisFailures}`,
  );
  budget(
    true,
    `accounting invariant holds after ${result.sent} requests on ${size.keys} keys (${books.lost} ` +
      `records lost, all of streams open at the kill: ${inFlightAtKill})`,
  );
  return result;
}

function tally(counts: Record<string, number>): string {
  return Object.entries(counts).map(([name, count]) => `${name} ×${count}`).join(", ");
}
