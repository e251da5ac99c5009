/**
 * New client connections per second: log in (SCRAM-SHA-256, or trust with the second ini pair), get the
 * first ReadyForQuery, send Terminate, close; many at once from the client workers, bounded concurrency.
 * The pooler's CPU per 1,000 logins is read from /proc as for pgbench.
 */
import type { ClientWorkers } from "./client-workers.js";
import type { LocalAddresses } from "./local-addresses.js";
import type { ClientAuthType } from "./pooler-config.js";
import { cpuSeconds } from "./proc-stats.js";
import type { LoginTarget } from "./raw-client.js";

export interface RateResult {
  readonly target: string;
  readonly auth: ClientAuthType;
  readonly rep: number;
  readonly attempted: number;
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly poolerCpuSecondsPer1k: number;
  readonly clientDerivations: number;
  readonly errors: readonly string[];
}

export const RATE_CONCURRENCY = 32;

export async function measureConnectionRate(
  workers: ClientWorkers,
  target: { name: string; auth: ClientAuthType; login: LoginTarget; pid?: number },
  count: number,
  rep: number,
  addresses: LocalAddresses | null,
): Promise<RateResult> {
  const cpuBefore = target.pid === undefined ? Number.NaN : cpuSeconds(target.pid);
  const totals = await workers.rate(target.login, count, RATE_CONCURRENCY, addresses);
  const cpu = target.pid === undefined ? Number.NaN : cpuSeconds(target.pid) - cpuBefore;
  return {
    target: target.name,
    auth: target.auth,
    rep,
    attempted: count,
    ok: totals.ok,
    failed: totals.failed,
    seconds: totals.seconds,
    perSecond: totals.ok / totals.seconds,
    poolerCpuSecondsPer1k: totals.ok > 0 ? (cpu / totals.ok) * 1000 : Number.NaN,
    clientDerivations: totals.derivations,
    errors: totals.errors,
  };
}
