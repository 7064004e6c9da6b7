/** Assertions for tests, re-exported from Node's assert (std's are not reachable here). */
import { strict } from "node:assert";

/** Asserts that a value is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  strict.ok(value, message);
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  strict.deepStrictEqual(actual, expected, message);
}

/** Asserts that two values differ. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  strict.notDeepStrictEqual(actual, expected, message);
}

/** Asserts that a string contains a substring. */
export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  strict.ok(
    actual.includes(expected),
    message ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
  );
}

/** Asserts that a promise rejects, optionally with an instance of `ErrorClass`; returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass?: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (ErrorClass && !(err instanceof ErrorClass)) {
      throw new Error(
        `expected ${ErrorClass.name}, got ${(err as Error)?.constructor?.name}: ${err}`,
      );
    }
    if (includes && !String((err as Error).message).includes(includes)) {
      throw new Error(
        `expected message to include ${JSON.stringify(includes)}, got ${(err as Error).message}`,
      );
    }
    return err as E;
  }
  throw new Error("expected the promise to reject");
}
