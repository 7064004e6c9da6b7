import { createMemoryLimiter } from "../../src/ratelimit/memory.ts";
import { testRateLimiter } from "./contract.ts";

testRateLimiter("memory limiter", (clock) => Promise.resolve(createMemoryLimiter(clock)));
