/**
 * Idle clients held through a pooler: N clients that completed SCRAM login and then sit idle, opened in
 * steps (1k, then up to 10k, then up to 50k) by the client workers, with the pooler's resident memory read
 * from /proc after each step. RSS per client = (RSS now − RSS before the first client) / N.
 */
import type { ClientWorkers } from "./client-workers.js";
import type { LocalAddresses } from "./local-addresses.js";
import type { PoolerKind } from "./pooler-config.js";
import type { PoolerProcess } from "./poolers.js";
import { memoryKb } from "./proc-stats.js";
import type { LoginTarget } from "./raw-client.js";

export interface IdleStep {
  readonly clients: number;
  readonly opened: number;
  readonly failed: number;
  /** Wall time of this step's logins. */
  readonly loginSeconds: number;
  readonly loginsPerSecond: number;
  readonly rssKb: number;
  readonly rssPerClientKb: number;
  /** A sample of held clients ran SELECT 1 through the pooler. */
  readonly checkedOk: number;
  readonly checkedFailed: number;
  /** Held clients the pooler had closed by then. */
  readonly dropped: number;
  readonly clientDerivations: number;
  readonly errors: readonly string[];
}

export interface IdleResult {
  readonly target: PoolerKind;
  readonly baselineRssKb: number;
  readonly steps: readonly IdleStep[];
}

const LOGIN_CONCURRENCY = 64;
const SETTLE_MS = 2_000;
const CHECK_SAMPLE_PER_WORKER = 50;

export async function measureIdleClients(
  workers: ClientWorkers,
  pooler: PoolerProcess,
  target: LoginTarget,
  steps: readonly number[],
  addresses: LocalAddresses,
  log: (line: string) => void,
): Promise<IdleResult> {
  await sleep(SETTLE_MS);
  const baselineRssKb = memoryKb(pooler.pid).rssKb;
  const results: IdleStep[] = [];
  let held = 0;
  try {
    for (const clients of steps) {
      const wanted = clients - held;
      if (wanted <= 0) continue;
      const opened = await workers.open(target, wanted, LOGIN_CONCURRENCY, addresses);
      await sleep(SETTLE_MS);
      const { rssKb } = memoryKb(pooler.pid);
      const check = await workers.check(CHECK_SAMPLE_PER_WORKER);
      held = check.held;
      const step: IdleStep = {
        clients,
        opened: check.held,
        failed: opened.failed,
        loginSeconds: opened.seconds,
        loginsPerSecond: opened.ok / opened.seconds,
        rssKb,
        rssPerClientKb: (rssKb - baselineRssKb) / Math.max(1, check.held),
        checkedOk: check.ok,
        checkedFailed: check.failed,
        dropped: check.dropped,
        clientDerivations: opened.derivations,
        errors: opened.errors,
      };
      results.push(step);
      log(
        `idle ${pooler.kind}: ${step.opened}/${clients} held (${opened.failed} failed), RSS ${(rssKb / 1024).toFixed(1)} MiB, ` +
          `${step.rssPerClientKb.toFixed(2)} KiB/client, logins ${step.loginsPerSecond.toFixed(0)}/s, ` +
          `check ${check.ok} ok ${check.failed} failed, dropped ${check.dropped}` +
          (opened.errors.length > 0 ? `; errors: ${opened.errors.join(" | ")}` : ""),
      );
      if (opened.ok === 0) break;
    }
  } finally {
    await workers.closeAll();
  }
  return { target: pooler.kind, baselineRssKb, steps: results };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
