/**
 * Point-in-time views of the engine for the admin side (JSON API, /metrics, the SQL console): plain data,
 * built on demand by walking the pooler's clients, pools and servers. Nothing here runs per message; the
 * engine only keeps the counters these functions read.
 *
 * Times: the engine's clock is monotonic milliseconds (`pooler.now()`); snapshots report wall-clock times
 * (epoch milliseconds) and durations in seconds.
 */

import type { ClientSession } from "./client-session.js";
import { ClientState } from "./client-session.js";
import type { HistogramSnapshot, PoolHistograms } from "./duration-histogram.js";
import type { Pool } from "./pool.js";
import type { Pooler } from "./pooler.js";
import type { SessionStatePolicy } from "./pooler-settings.js";
import { type ServerConnection, ServerState } from "./server-connection.js";
import { PinReason } from "./session-effects.js";

export { PinReason };

/** PgBouncer's names for where a server is (SHOW SERVERS `state`, SHOW POOLS `sv_*`). */
export type PgbouncerServerState = "active" | "idle" | "used" | "tested" | "new" | "being_canceled";

export interface PoolCounters {
  readonly transactions: number;
  readonly queries: number;
  /** Bytes received from clients (and sent on to servers). */
  readonly bytesFromClients: number;
  /** Bytes received from servers (and sent on to clients). */
  readonly bytesFromServers: number;
  readonly serverAssignments: number;
  readonly waitSeconds: number;
  readonly transactionSeconds: number;
  /** Sum of query durations, when the engine measures them (the query histogram); else null. */
  readonly querySeconds: number | null;
}

export interface PoolSnapshot {
  /** `database/user`. */
  readonly name: string;
  readonly database: string;
  readonly user: string;
  readonly mode: string;
  readonly size: number;
  readonly minSize: number;
  readonly reserveSize: number;
  readonly clients: {
    /** Holding a server. */
    readonly active: number;
    /** Logged in, holding none, asking for none. */
    readonly idle: number;
    /** Waiting for a server (or for the pool's first login). */
    readonly waiting: number;
  };
  readonly servers: {
    readonly active: number;
    readonly idle: number;
    /** Idle longer than server_check_delay: checked before the next client gets them. */
    readonly used: number;
    /** Running a query of pgmux's own (check, reset, rollback, parameter sync). */
    readonly tested: number;
    /** Connecting or logging in. */
    readonly login: number;
    /** Waiting for a cancel request to land before anyone may have them. */
    readonly beingCanceled: number;
  };
  /** How long the oldest waiting client has waited, in seconds (0 when none waits). */
  readonly maxWaitSeconds: number;
  readonly totals: PoolCounters;
  /** Wait, transaction and query durations, when the engine keeps them. */
  readonly histograms: {
    readonly wait: HistogramSnapshot;
    readonly transaction: HistogramSnapshot;
    readonly query: HistogramSnapshot;
  } | null;
  /** The last reason a server could not be reached or logged in to ("" when the last attempt worked). */
  readonly lastConnectFailure: string;
  /** False when the last login attempts failed and no server is up. */
  readonly reachable: boolean;
  /**
   * Prepared statements carried across servers; null where pgmux leaves them to the server (session
   * pools, max_prepared_statements = 0).
   */
  readonly preparedStatements: PreparedStatementsSnapshot | null;
  /** Session state under transaction pooling; null in session pools (a client keeps its server anyway). */
  readonly sessionState: PoolSessionStateSnapshot | null;
}

export interface PreparedStatementsSnapshot {
  /** A client's Parse or Bind found its statement already on the server. */
  readonly hits: number;
  /** The server lacked it: pgmux prepared it there. */
  readonly misses: number;
  /** Statements closed on a server to keep it within max_prepared_statements. */
  readonly evictions: number;
  /** Distinct statements (query text and parameter types) the pool shares among its clients now. */
  readonly cached: number;
  /** Statements held by the pool's servers now, summed over them. */
  readonly onServers: number;
}

export interface PoolSessionStateSnapshot {
  /** session_state: pin, error or allow. */
  readonly policy: SessionStatePolicy;
  /** Clients pinned to their server now. */
  readonly pinnedClients: number;
  /**
   * Times a client came to be pinned for a reason it was not already pinned for, by that reason (a
   * counter; every reason is present, 0 until it happens).
   */
  readonly pinsByReason: Readonly<Record<PinReason, number>>;
  /** Statements refused under session_state = error. */
  readonly refused: number;
}

export interface ClientSnapshot {
  readonly id: number;
  readonly state: ClientState;
  readonly user: string;
  readonly database: string;
  /** `database/user` of its pool, or null (logging in, or on the admin console). */
  readonly pool: string | null;
  readonly addr: string;
  readonly port: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly applicationName: string;
  readonly connectedAt: number;
  readonly lastActivityAt: number;
  /** How long it has been waiting for a server, in seconds (0 when not waiting). */
  readonly waitSeconds: number;
  /** ReadyForQuery its server still owes it. */
  readonly owed: number;
  readonly serverId: number | null;
  /**
   * Why it keeps its server between transactions: reason → how many things of that kind hold it
   * (channels, locks, tables, ...); {} when nothing does. Null where pgmux does not track session state
   * (session pools, the admin console, logging in).
   */
  readonly pins: Partial<Record<PinReason, number>> | null;
  /** Its session-level SETs replayed on each server it gets (null where not tracked). */
  readonly replayedSets: number | null;
  /** Its named prepared statements (null where pgmux does not carry them across servers). */
  readonly preparedStatements: number | null;
}

export interface ServerSnapshot {
  readonly id: number;
  readonly state: ServerState;
  readonly pgbouncerState: PgbouncerServerState;
  readonly pool: string;
  readonly database: string;
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly backendPid: number;
  readonly createdAt: number;
  readonly lastUsedAt: number;
  readonly clientId: number | null;
  /** Status of its last ReadyForQuery: I, T or E. */
  readonly transactionStatus: string;
  readonly applicationName: string;
  /** Prepared statements it holds under pgmux's names (0 where pgmux does not carry them across servers). */
  readonly preparedStatements: number;
}

export interface PoolerTotals extends PoolCounters {
  readonly clientsAccepted: number;
  readonly serversOpened: number;
}

export interface ErrorCounts {
  /** Server ErrorResponses relayed to clients, by SQLSTATE. */
  readonly serverBySqlState: Readonly<Record<string, number>>;
  /** pgmux's own errors, by registry code. */
  readonly poolerByCode: Readonly<Record<string, number>>;
  /** Connections refused before anything was read, by reason. */
  readonly refusedByReason: Readonly<Record<string, number>>;
}

/** Clock conversions for one snapshot: the engine's monotonic milliseconds to wall-clock time. */
export interface SnapshotClock {
  /** `pooler.now()` when the snapshot was taken. */
  readonly now: number;
  /** Epoch milliseconds at the same instant. */
  readonly wallNow: number;
}

export function snapshotClock(pooler: Pooler): SnapshotClock {
  return { now: pooler.now(), wallNow: Date.now() };
}

function wall(clock: SnapshotClock, t: number): number {
  return Math.round(clock.wallNow - (clock.now - t));
}

/** The engine's histograms of a pool, once pool.ts keeps them (`readonly histograms = new PoolHistograms()`). */
export function poolHistograms(pool: Pool): PoolHistograms | null {
  return (pool as Pool & { readonly histograms?: PoolHistograms }).histograms ?? null;
}

/** Where PgBouncer would list a server. */
export function pgbouncerServerState(server: ServerConnection, pool: Pool, now: number): PgbouncerServerState {
  switch (server.state) {
    case ServerState.Active:
      return "active";
    case ServerState.Internal:
      return "tested";
    case ServerState.Connecting:
    case ServerState.Login:
      return "new";
    default: {
      if (server.cancelsInFlight > 0 && server.client === null) return "being_canceled";
      const checkDelay = pool.pooler.settings.serverCheckDelayMs;
      return checkDelay > 0 && now - server.lastUsedAt > checkDelay ? "used" : "idle";
    }
  }
}

function poolCounters(pool: Pool, histograms: PoolHistograms | null): PoolCounters {
  const s = pool.stats;
  return {
    transactions: s.transactions,
    queries: s.queries,
    bytesFromClients: s.bytesFromClients,
    bytesFromServers: s.bytesFromServers,
    serverAssignments: s.serverAssignments,
    waitSeconds: s.waitMicros / 1e6,
    transactionSeconds: s.transactionMicros / 1e6,
    querySeconds: histograms === null ? null : histograms.query.sumMs / 1000,
  };
}

export function snapshotPool(pool: Pool, clients: Iterable<ClientSession>, clock: SnapshotClock): PoolSnapshot {
  let active = 0;
  let idle = 0;
  let waiting = 0;
  let oldestWait = 0;
  let pinned = 0;
  for (const c of clients) {
    if (c.pool !== pool) continue;
    if (c.session?.pinned === true) pinned++;
    switch (c.state) {
      case ClientState.Active:
        active++;
        break;
      case ClientState.Idle:
        idle++;
        break;
      case ClientState.Waiting:
      case ClientState.Welcome:
        waiting++;
        if (c.waitingSince > 0) oldestWait = Math.max(oldestWait, clock.now - c.waitingSince);
        break;
    }
  }
  const servers = { active: 0, idle: 0, used: 0, tested: 0, login: 0, beingCanceled: 0 };
  let up = false;
  let statementsOnServers = 0;
  for (const server of pool.servers) {
    if (server.state === ServerState.Closed) continue;
    statementsOnServers += server.statements.size;
    switch (pgbouncerServerState(server, pool, clock.now)) {
      case "active":
        servers.active++;
        break;
      case "idle":
        servers.idle++;
        break;
      case "used":
        servers.used++;
        break;
      case "tested":
        servers.tested++;
        break;
      case "new":
        servers.login++;
        break;
      case "being_canceled":
        servers.beingCanceled++;
        break;
    }
    if (server.state !== ServerState.Connecting && server.state !== ServerState.Login) up = true;
  }
  const histograms = poolHistograms(pool);
  return {
    name: pool.name,
    database: pool.database.name,
    user: pool.user,
    mode: pool.mode,
    size: pool.size,
    minSize: pool.minSize,
    reserveSize: pool.reserveSize,
    clients: { active, idle, waiting },
    servers,
    maxWaitSeconds: oldestWait / 1000,
    totals: poolCounters(pool, histograms),
    histograms:
      histograms === null
        ? null
        : {
            wait: histograms.wait.snapshot(),
            transaction: histograms.transaction.snapshot(),
            query: histograms.query.snapshot(),
          },
    lastConnectFailure: pool.lastConnectFailure,
    reachable: up || pool.lastConnectFailure === "",
    preparedStatements: preparedStatementsSnapshot(pool, statementsOnServers),
    sessionState:
      pool.mode === "session"
        ? null
        : {
            policy: pool.sessionState,
            pinnedClients: pinned,
            pinsByReason: pinsByReason(pool),
            refused: pool.stats.refusedSessionState,
          },
  };
}

function preparedStatementsSnapshot(pool: Pool, onServers: number): PreparedStatementsSnapshot | null {
  const cache = pool.statements;
  if (cache === null) return null;
  const { hits, misses, evictions } = cache.stats;
  return { hits, misses, evictions, cached: cache.size, onServers };
}

function pinsByReason(pool: Pool): Record<PinReason, number> {
  const out = {} as Record<PinReason, number>;
  for (const reason of Object.values(PinReason)) out[reason] = pool.pinsByReason.get(reason) ?? 0;
  return out;
}

/** Every pool, in the order they were created. */
export function snapshotPools(pooler: Pooler, clock: SnapshotClock = snapshotClock(pooler)): PoolSnapshot[] {
  const out: PoolSnapshot[] = [];
  for (const pool of pooler.pools.values()) out.push(snapshotPool(pool, pooler.clients, clock));
  return out;
}

function splitAddress(remote: string): { addr: string; port: number } {
  const colon = remote.lastIndexOf(":");
  if (colon < 0) return { addr: remote, port: 0 };
  const port = Number(remote.slice(colon + 1));
  return Number.isInteger(port) ? { addr: remote.slice(0, colon), port } : { addr: remote, port: 0 };
}

export function snapshotClient(client: ClientSession, clock: SnapshotClock): ClientSnapshot {
  const { addr, port } = splitAddress(client.remote);
  const waiting =
    (client.state === ClientState.Waiting || client.state === ClientState.Welcome) && client.waitingSince > 0;
  return {
    id: client.id,
    state: client.state,
    user: client.user,
    database: client.database,
    pool: client.pool?.name ?? null,
    addr,
    port,
    localAddr: client.socket.localAddress ?? "",
    localPort: client.socket.localPort ?? 0,
    applicationName: client.params.get("application_name") ?? "",
    connectedAt: wall(clock, client.connectedAt),
    lastActivityAt: wall(clock, client.lastActivityAt),
    waitSeconds: waiting ? (clock.now - client.waitingSince) / 1000 : 0,
    owed: client.owed,
    serverId: client.server?.id ?? null,
    pins: clientPins(client),
    replayedSets: client.session?.sets.size ?? null,
    preparedStatements: client.statements?.size ?? null,
  };
}

function clientPins(client: ClientSession): Partial<Record<PinReason, number>> | null {
  const pins = client.session?.pins;
  return pins === undefined ? null : Object.fromEntries(pins);
}

/** Every client pgmux holds, logging in or logged in, ordered by id. */
export function snapshotClients(pooler: Pooler, clock: SnapshotClock = snapshotClock(pooler)): ClientSnapshot[] {
  const out: ClientSnapshot[] = [];
  for (const c of pooler.clients) if (c.state !== ClientState.Closed) out.push(snapshotClient(c, clock));
  return out.sort((a, b) => a.id - b.id);
}

export function snapshotServer(server: ServerConnection, clock: SnapshotClock): ServerSnapshot {
  const pool = server.pool;
  const linked = server.client;
  return {
    id: server.id,
    state: server.state,
    pgbouncerState: pgbouncerServerState(server, pool, clock.now),
    pool: pool.name,
    database: pool.database.name,
    user: pool.serverUser,
    host: pool.database.host,
    port: pool.database.port,
    localAddr: server.socket.localAddress ?? "",
    localPort: server.socket.localPort ?? 0,
    backendPid: server.backendPid,
    createdAt: wall(clock, server.createdAt),
    lastUsedAt: wall(clock, server.lastUsedAt),
    clientId: linked?.id ?? null,
    transactionStatus: String.fromCharCode(server.status),
    applicationName: linked?.params.get("application_name") ?? server.params.get("application_name") ?? "",
    preparedStatements: server.statements.size,
  };
}

/** Every server of every pool, ordered by id. */
export function snapshotServers(pooler: Pooler, clock: SnapshotClock = snapshotClock(pooler)): ServerSnapshot[] {
  const out: ServerSnapshot[] = [];
  for (const pool of pooler.pools.values()) {
    for (const server of pool.servers) if (server.state !== ServerState.Closed) out.push(snapshotServer(server, clock));
  }
  return out.sort((a, b) => a.id - b.id);
}

/** Counters summed over every pool, with the process-wide ones. */
export function poolerTotals(pooler: Pooler): PoolerTotals {
  let transactions = 0;
  let queries = 0;
  let bytesFromClients = 0;
  let bytesFromServers = 0;
  let serverAssignments = 0;
  let waitMicros = 0;
  let transactionMicros = 0;
  let queryMs: number | null = null;
  for (const pool of pooler.pools.values()) {
    const s = pool.stats;
    transactions += s.transactions;
    queries += s.queries;
    bytesFromClients += s.bytesFromClients;
    bytesFromServers += s.bytesFromServers;
    serverAssignments += s.serverAssignments;
    waitMicros += s.waitMicros;
    transactionMicros += s.transactionMicros;
    const h = poolHistograms(pool);
    if (h !== null) queryMs = (queryMs ?? 0) + h.query.sumMs;
  }
  return {
    transactions,
    queries,
    bytesFromClients,
    bytesFromServers,
    serverAssignments,
    waitSeconds: waitMicros / 1e6,
    transactionSeconds: transactionMicros / 1e6,
    querySeconds: queryMs === null ? null : queryMs / 1000,
    clientsAccepted: pooler.stats.clientsAccepted,
    serversOpened: pooler.stats.serversOpened,
  };
}

export interface PinTotals {
  /** Clients pinned to their server now. */
  readonly pinnedClients: number;
  /** Times a client came to be pinned, by reason, summed over pools (every reason present). */
  readonly byReason: Readonly<Record<PinReason, number>>;
  /** Statements refused under session_state = error. */
  readonly refused: number;
}

/** Pins over every pool. */
export function pinTotals(pooler: Pooler): PinTotals {
  let pinnedClients = 0;
  for (const c of pooler.clients) if (c.state !== ClientState.Closed && c.session?.pinned === true) pinnedClients++;
  const byReason = {} as Record<PinReason, number>;
  for (const reason of Object.values(PinReason)) byReason[reason] = 0;
  let refused = 0;
  for (const pool of pooler.pools.values()) {
    for (const [reason, n] of pool.pinsByReason) byReason[reason] += n;
    refused += pool.stats.refusedSessionState;
  }
  return { pinnedClients, byReason, refused };
}

/** Prepared-statement counters summed over the pools that carry statements across servers. */
export function preparedStatementTotals(pooler: Pooler): { hits: number; misses: number; evictions: number } {
  const out = { hits: 0, misses: 0, evictions: 0 };
  for (const pool of pooler.pools.values()) {
    const st = pool.statements?.stats;
    if (st === undefined) continue;
    out.hits += st.hits;
    out.misses += st.misses;
    out.evictions += st.evictions;
  }
  return out;
}

export function errorCounts(pooler: Pooler): ErrorCounts {
  const st = pooler.stats;
  return {
    serverBySqlState: Object.fromEntries(st.serverErrorsBySqlState),
    poolerByCode: Object.fromEntries(st.poolerErrors),
    refusedByReason: Object.fromEntries(st.refusedConnections),
  };
}

/** Counts of clients in each state, over every client pgmux holds. */
export function clientStateCounts(pooler: Pooler): Record<ClientState, number> {
  const counts: Record<ClientState, number> = {
    startup: 0,
    auth: 0,
    welcome: 0,
    idle: 0,
    waiting: 0,
    active: 0,
    closed: 0,
  };
  for (const c of pooler.clients) counts[c.state]++;
  return counts;
}
