/** Real Chromium (Debian's package) driven by playwright-core. */
import { type Browser, chromium } from "playwright-core";

/** Where screenshots go (git-ignored). */
export const ARTIFACTS = new URL("../artifacts/ui/", import.meta.url);

/** Launches headless Chromium; fails clearly when it is not installed (CI installs it). */
export async function launchBrowser(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const executablePath = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
  try {
    await Deno.stat(executablePath);
  } catch {
    throw new Error(`Chromium not found at ${executablePath}: apt-get install chromium`);
  }
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  return {
    browser,
    async close() {
      // Playwright gives every launch a fresh temporary profile and removes it on close.
      await browser.close();
    },
  };
}
