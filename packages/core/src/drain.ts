import { ClientState } from "./client-session.js";
import { releaseIfAtBoundary } from "./pool-winddown.js";
import type { Pooler } from "./pooler.js";

export interface DrainOptions {
  /** How long clients may take to reach a transaction boundary; 0 or absent waits for ever. */
  readonly timeoutMs?: number;
  /** How often the drain looks whether everyone has gone. */
  readonly pollMs?: number;
  /** After the timeout, how long to wait for the cancel requests to reach PostgreSQL. */
  readonly cancelWaitMs?: number;
}

export interface DrainResult {
  /** Clients still connected when the timeout came (they were then closed). */
  readonly clientsLeft: number;
  readonly timedOut: boolean;
  /** Queries cancelled at the timeout. */
  readonly cancelled: number;
  readonly durationMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function poolClients(pooler: Pooler): number {
  let n = 0;
  for (const c of pooler.clients) if (c.adminConsole === null) n++;
  return n;
}

/**
 * The graceful half of a shutdown. From the first moment new clients are refused (57P01); every client
 * that holds no server is closed with 57P01 now (a request it was waiting to send never started); every
 * other one is closed at its next transaction boundary (Pool.release while the pooler drains), so no
 * transaction is cut. Servers close as they come back. When the last pool client has gone, or at
 * `timeoutMs`, whatever still runs is cancelled on PostgreSQL and its client closed. Admin console
 * sessions stay to the end, so an operator can watch the drain. The caller then calls Pooler.stop().
 */
export async function drainPooler(pooler: Pooler, options: DrainOptions): Promise<DrainResult> {
  const started = pooler.now();
  const timeoutMs = options.timeoutMs ?? 0;
  const pollMs = options.pollMs ?? 20;
  pooler.draining = true;
  pooler.log.info(
    { clients: poolClients(pooler), timeoutSeconds: timeoutMs / 1000 },
    "draining: new clients are refused, each client leaves at its next transaction boundary",
  );
  for (const client of [...pooler.clients]) {
    if (client.adminConsole !== null) continue;
    if (client.server === null) client.fail("shutting_down", {});
    else releaseIfAtBoundary(client);
  }
  for (const pool of pooler.pools.values()) pool.closeIdle(() => "pgmux is shutting down");

  let timedOut = false;
  while (poolClients(pooler) > 0) {
    if (timeoutMs > 0 && pooler.now() - started >= timeoutMs) {
      timedOut = true;
      break;
    }
    await sleep(pollMs);
  }

  let cancelled = 0;
  const clientsLeft = poolClients(pooler);
  if (timedOut) {
    const servers = [];
    for (const client of pooler.clients) {
      const server = client.server;
      if (client.adminConsole !== null || server === null) continue;
      if (client.state === ClientState.Active && client.owed > 0) {
        pooler.cancelQuery(server);
        servers.push(server);
        cancelled++;
      }
    }
    pooler.log.warn(
      { clients: clientsLeft, cancelled, reason: "shutdown_timeout reached" },
      "drain timed out: cancelling what still runs and closing the remaining clients",
    );
    const cancelDeadline = pooler.now() + (options.cancelWaitMs ?? 2000);
    while (servers.some((s) => s.cancelsInFlight > 0) && pooler.now() < cancelDeadline) await sleep(pollMs);
    for (const client of [...pooler.clients]) if (client.adminConsole === null) client.fail("shutting_down", {});
  }
  for (const client of [...pooler.clients]) client.fail("shutting_down", {});
  const durationMs = pooler.now() - started;
  pooler.log.info({ durationMs: Math.round(durationMs), timedOut, cancelled, clientsLeft }, "drain finished");
  return { clientsLeft, timedOut, cancelled, durationMs };
}
