import { TransactionStatus } from "@pgmux/protocol";
import { ClientState } from "./client-session.js";
import type { Pooler } from "./pooler.js";
import { forgetRetiredPools } from "./reload-settings.js";
import { ServerState } from "./server-connection.js";

/** Upper bound on pgmux's own queries (check, reset, rollback, drain after a client left). */
const OWN_QUERY_TIMEOUT_MS = 30_000;

/**
 * Every timeout in one periodic pass over clients, pools and servers, on the pooler's clock: no timer per
 * connection. Each expiry closes the offender with its own error and reason.
 */
export function sweep(pooler: Pooler, now: number): void {
  const s = pooler.settings;
  const seconds = (ms: number): string => (ms / 1000).toString();

  for (const client of pooler.clients) {
    switch (client.state) {
      case ClientState.Startup:
      case ClientState.Auth:
        if (s.clientLoginTimeoutMs > 0 && now - client.connectedAt > s.clientLoginTimeoutMs) {
          client.fail("client_login_timeout", { seconds: seconds(s.clientLoginTimeoutMs) });
        }
        break;
      case ClientState.Welcome:
      case ClientState.Waiting: {
        const pool = client.pool;
        if (pool === null || client.waitingSince === 0) break;
        if (s.queryWaitTimeoutMs > 0 && now - client.waitingSince > s.queryWaitTimeoutMs) {
          if (pool.lastConnectFailure !== "") {
            client.fail("server_unreachable", { pool: pool.name, reason: pool.lastConnectFailure });
          } else {
            client.fail("pool_wait_timeout", {
              pool: pool.name,
              seconds: seconds(s.queryWaitTimeoutMs),
              size: pool.size,
            });
          }
        }
        break;
      }
      case ClientState.Idle:
        if (s.clientIdleTimeoutMs > 0 && now - client.lastActivityAt > s.clientIdleTimeoutMs) {
          client.fail("client_idle_timeout", { seconds: seconds(s.clientIdleTimeoutMs) });
        }
        break;
      case ClientState.Active: {
        const server = client.server;
        if (server === null) break;
        if (client.owed > 0) {
          if (s.queryTimeoutMs > 0 && client.queryStartedAt > 0 && now - client.queryStartedAt > s.queryTimeoutMs) {
            client.fail("query_timeout", { seconds: seconds(s.queryTimeoutMs) });
          }
        } else if (
          s.idleTransactionTimeoutMs > 0 &&
          server.status !== TransactionStatus.Idle &&
          now - client.lastActivityAt > s.idleTransactionTimeoutMs
        ) {
          client.fail("idle_transaction_timeout", { seconds: seconds(s.idleTransactionTimeoutMs) });
        } else if (
          s.clientIdleTimeoutMs > 0 &&
          server.status === TransactionStatus.Idle &&
          now - client.lastActivityAt > s.clientIdleTimeoutMs
        ) {
          client.fail("client_idle_timeout", { seconds: seconds(s.clientIdleTimeoutMs) });
        }
        break;
      }
    }
  }

  for (const pool of pooler.pools.values()) {
    for (const server of pool.servers) {
      if (
        (server.state === ServerState.Connecting || server.state === ServerState.Login) &&
        s.serverConnectTimeoutMs > 0 &&
        now - server.stateSince > s.serverConnectTimeoutMs
      ) {
        server.close(`server_connect_timeout: no login within ${seconds(s.serverConnectTimeoutMs)} s`);
      } else if (server.state === ServerState.Internal && now - server.stateSince > OWN_QUERY_TIMEOUT_MS) {
        server.close("pgmux's own query on the server did not finish in time");
      }
    }
    pool.closeIdle((server) => {
      if (s.serverLifetimeMs > 0 && now - server.createdAt > s.serverLifetimeMs && pool.servers.size > pool.minSize) {
        return "server_lifetime reached";
      }
      if (
        s.serverIdleTimeoutMs > 0 &&
        now - server.lastUsedAt > s.serverIdleTimeoutMs &&
        pool.servers.size > pool.minSize
      ) {
        return "server_idle_timeout reached";
      }
      return null;
    });
    // Keep min_pool_size servers warm (only once a client has shown the pool is in use, as PgBouncer does).
    if (pool.servers.size < pool.minSize && pool.welcome !== null)
      pool.openServers(pool.minSize - pool.servers.size, false);
    // Clients that waited past reserve_pool_timeout may use the reserve.
    if (pool.reserveSize > 0 && s.reservePoolTimeoutMs > 0) {
      for (const c of pool.waitingClients()) {
        if (c.waitingSince > 0 && now - c.waitingSince > s.reservePoolTimeoutMs) {
          pool.openServers(pool.waitingCount - pool.connecting, true);
          break;
        }
      }
    }
    // Retry opening servers for waiting clients once server_login_retry has passed.
    if (pool.waitingCount > pool.connecting) pool.dispatch();
    else if (pool.welcome === null && pool.servers.size === 0 && [...pool.waitingClients()].length > 0) {
      pool.openServers(1, false);
    }
  }
  forgetRetiredPools(pooler);
}
