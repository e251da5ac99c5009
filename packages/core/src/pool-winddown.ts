import { type ClientSession, ClientState } from "./client-session.js";

/**
 * Lets a client go at a transaction boundary while its pool winds down: FATAL 57P01, saying why (pgmux is
 * shutting down, or the client's database was removed by a reload). Deferred to a microtask so that the
 * server-side bookkeeping that found the boundary (a release in the middle of reading a chunk) completes
 * first; a client that meanwhile took a server again is left for its next boundary.
 */
export function closeAtBoundary(client: ClientSession): void {
  queueMicrotask(() => {
    const pool = client.pool;
    if (client.server !== null || client.state === ClientState.Closed || client.state === ClientState.Active) return;
    if (pool?.pooler.draining) client.fail("shutting_down", {});
    else if (pool?.retired) client.fail("database_removed", { database: pool.database.name });
  });
}

/**
 * A client already at a boundary while holding a server (a session-mode client between transactions) has
 * no ReadyForQuery to come that would release it: release it now, which lets it go.
 */
export function releaseIfAtBoundary(client: ClientSession): void {
  const server = client.server;
  const pool = client.pool;
  if (server === null || pool === null || client.state !== ClientState.Active || server.client !== client) return;
  if (client.owed === 0 && client.releasable(server.status)) pool.release(server);
}
