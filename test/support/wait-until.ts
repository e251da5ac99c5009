import { setTimeout as sleep } from "node:timers/promises";

export interface WaitUntilOptions {
  readonly timeoutMs: number;
  /** Between checks; the first check runs at once. */
  readonly intervalMs?: number;
  /** Extra context for the timeout error, computed only when it is thrown (a log tail, a last value). */
  readonly detail?: () => string;
}

/**
 * Polls `check` until it returns true, or throws after `timeoutMs` naming `what` was awaited. Tests wait on
 * conditions this way, never on fixed sleeps.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: WaitUntilOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 25;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) {
      const detail = options.detail?.();
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${detail ? `\n${detail}` : ""}`);
    }
    await sleep(intervalMs);
  }
}
