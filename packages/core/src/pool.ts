import { TransactionStatus } from "@pgmux/protocol";
import type { Logger } from "pino";
import type { ClientSession } from "./client-session.js";
import { PoolHistograms } from "./duration-histogram.js";
import { closeAtBoundary, releaseIfAtBoundary } from "./pool-winddown.js";
import type { Pooler } from "./pooler.js";
import type { DatabaseSettings, PoolerSettings, PoolMode, SessionStatePolicy } from "./pooler-settings.js";
import { StatementCache } from "./prepared-statements.js";
import { type InternalResult, ServerConnection, ServerState } from "./server-connection.js";
import type { ScramKeys } from "./server-login.js";
import type { PinReason } from "./session-effects.js";
import { sessionSyncQuery } from "./session-state.js";
import { parameterSyncQuery, recordParameterSync } from "./tracked-parameters.js";

/** Counters a pool keeps for the admin side; plain numbers, incremented where the work happens. */
export interface PoolStats {
  transactions: number;
  queries: number;
  bytesFromClients: number;
  bytesFromServers: number;
  serverAssignments: number;
  waitMicros: number;
  transactionMicros: number;
  /** Statements refused under session_state = error. */
  refusedSessionState: number;
}

/**
 * The servers of one (database, user) pair and the clients waiting for them. Idle servers are a stack
 * (the most recently used goes out first: its caches are warm); waiting clients a FIFO queue. Every server
 * comes and goes through the methods here, so the counts stay true.
 */
export class Pool {
  readonly name: string;
  readonly log: Logger;
  // Mode, sizes, policies and the server login follow the configuration: a reload changes them (applySettings).
  mode: PoolMode;
  sessionState: SessionStatePolicy;
  size: number;
  minSize: number;
  reserveSize: number;
  /** The user pgmux logs in to the server as. */
  serverUser: string;
  /** Password (plain or `md5…`) or SCRAM verifier for the server login, if pgmux has one. */
  serverSecret: string | undefined;
  /** SCRAM keys learnt from a client's own login, for logging in without a plaintext password. */
  clientScramKeys: ScramKeys | null = null;

  readonly servers = new Set<ServerConnection>();
  private readonly idle: ServerConnection[] = [];
  private readonly waiting: ClientSession[] = [];
  private waitingHead = 0;
  private readonly welcomeWaiters: ClientSession[] = [];
  /** ParameterStatus set of the pool's first server, sent to each client at login. */
  welcome: ReadonlyMap<string, string> | null = null;
  connecting = 0;
  /** Bumped by reconnect(): a server of an older generation is closed instead of going back to idle. */
  generation = 0;
  active = 0;
  lastConnectFailureAt = 0;
  lastConnectFailure = "";
  /** Set when the server refused the login itself: waiting will not help, so waiters are told at once. */
  private loginRefused = false;
  readonly stats: PoolStats = {
    transactions: 0,
    queries: 0,
    bytesFromClients: 0,
    bytesFromServers: 0,
    serverAssignments: 0,
    waitMicros: 0,
    transactionMicros: 0,
    refusedSessionState: 0,
  };
  /** Times a client gained a pin reason it did not hold (one client may count under several reasons). */
  readonly pinsByReason = new Map<PinReason, number>();
  /** Durations of client waits, transactions and queries, observed where the counters above are bumped. */
  readonly histograms = new PoolHistograms();
  /**
   * The pool's prepared statements when pgmux carries them across servers (transaction and statement
   * pools with max_prepared_statements > 0), else null and clients' statements pass through untouched.
   * A reload that changes the mode sets or clears it for clients that log in afterwards.
   */
  statements: StatementCache | null;

  /**
   * Set when a reload removed this pool's database: its clients finish what they are doing and are
   * closed, its servers close as they come back, and the pooler forgets it once it is empty.
   */
  retired = false;

  constructor(
    readonly pooler: Pooler,
    public database: DatabaseSettings,
    readonly user: string,
  ) {
    const limits = poolLimits(pooler.settings, database, user);
    this.name = `${database.name}/${user}`;
    this.mode = limits.mode;
    this.sessionState = limits.sessionState;
    this.size = limits.size;
    this.minSize = limits.minSize;
    this.reserveSize = limits.reserveSize;
    this.serverUser = limits.serverUser;
    this.serverSecret = limits.serverSecret;
    this.log = pooler.log.child({ pool: this.name, database: database.name, user });
    this.statements = statementCacheFor(this.mode, pooler.settings);
  }

  /** True while the pool winds down (pgmux drains, or its database was removed): clients leave at a boundary. */
  get closing(): boolean {
    return this.retired || this.pooler.draining;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  get waitingCount(): number {
    return this.waiting.length - this.waitingHead;
  }

  /** Oldest waiting client, for the janitor's reserve-pool and wait-timeout checks. */
  *waitingClients(): Iterable<ClientSession> {
    for (let i = this.waitingHead; i < this.waiting.length; i++) yield this.waiting[i]!;
    yield* this.welcomeWaiters;
  }

  /** Calls `client.loginReady()` once the pool knows the server's parameters (connecting one if needed). */
  awaitWelcome(client: ClientSession): void {
    if (this.welcome !== null) {
      client.welcomeReady(this.welcome);
      return;
    }
    this.welcomeWaiters.push(client);
    if (this.servers.size === 0) this.openServers(1, false);
  }

  /** Queues the client for a server; it is linked as soon as one is free. */
  enqueue(client: ClientSession): void {
    this.waiting.push(client);
    this.dispatch();
  }

  /** Takes a client out of the queues (it left, or timed out). */
  forget(client: ClientSession): void {
    let i = this.waiting.indexOf(client, this.waitingHead);
    if (i >= 0) this.waiting.splice(i, 1);
    i = this.welcomeWaiters.indexOf(client);
    if (i >= 0) this.welcomeWaiters.splice(i, 1);
  }

  private nextWaiter(): ClientSession | undefined {
    while (this.waitingHead < this.waiting.length) {
      const c = this.waiting[this.waitingHead++]!;
      if (this.waitingHead > 64 && this.waitingHead * 2 > this.waiting.length) {
        this.waiting.splice(0, this.waitingHead);
        this.waitingHead = 0;
      }
      if (c.isWaiting) return c;
    }
    return undefined;
  }

  /** Hands idle servers to waiting clients, and opens servers for those left waiting, within the limits. */
  dispatch(): void {
    if (this.pooler.paused) return;
    while (this.waitingCount > 0 && this.idle.length > 0) {
      const server = this.idle.pop()!;
      const now = this.pooler.now();
      if (
        this.pooler.settings.serverCheckDelayMs > 0 &&
        now - server.lastUsedAt > this.pooler.settings.serverCheckDelayMs
      ) {
        this.check(server, now);
        continue;
      }
      const client = this.nextWaiter();
      if (client === undefined) {
        this.idle.push(server);
        break;
      }
      this.link(client, server, now);
    }
    const want = this.waitingCount - this.connecting;
    if (want > 0) this.openServers(want, false);
  }

  /** Opens up to `n` servers, within pool size (plus the reserve when allowed) and the db/user limits. */
  openServers(n: number, useReserve: boolean): void {
    if (this.closing) return;
    const now = this.pooler.now();
    const retryMs = this.pooler.settings.serverLoginRetryMs;
    if (this.lastConnectFailureAt > 0 && now - this.lastConnectFailureAt < retryMs) return;
    const limit = this.size + (useReserve ? this.reserveSize : 0);
    for (let i = 0; i < n && this.servers.size < limit; i++) {
      if (!this.pooler.mayOpenServer(this)) break;
      const server = new ServerConnection(this, now);
      this.servers.add(server);
      this.connecting++;
      this.pooler.serverOpened(this, server);
    }
  }

  /** A server finished its login. */
  serverLoggedIn(server: ServerConnection): void {
    this.connecting--;
    this.lastConnectFailureAt = 0;
    this.lastConnectFailure = "";
    this.loginRefused = false;
    const now = this.pooler.now();
    server.deactivate(now);
    if (this.welcome === null) {
      this.welcome = new Map(server.params);
      for (const c of this.welcomeWaiters.splice(0)) c.welcomeReady(this.welcome);
    }
    const connectQuery = this.database.connectQuery;
    if (connectQuery !== undefined && connectQuery !== "") {
      server.runQuery(connectQuery, now, (r) => this.afterOwnQuery(server, r, "connect_query"));
      return;
    }
    this.makeIdle(server);
  }

  /** The server refused the login (its ErrorResponse): waiters hear it now rather than at their timeout. */
  serverLoginFailed(server: ServerConnection, message: string, sqlState: string): void {
    this.loginRefused = true;
    this.lastConnectFailure = message;
    server.log.warn({ sqlState, reason: message }, "server login failed");
  }

  /** Any server's socket closed, in any state. */
  serverClosed(server: ServerConnection, wasLoggingIn: boolean, previous: ServerState): void {
    if (!this.servers.delete(server)) return;
    this.pooler.serverClosed(this, server);
    const i = this.idle.indexOf(server);
    if (i >= 0) this.idle.splice(i, 1);
    const client = server.client;
    if (client !== null) {
      this.active--;
      server.client = null;
      if (client.server === server) {
        client.serverLost(server.closeReason);
      } else if (client.isWaiting) {
        // It died while being prepared for this client (parameter sync): the client waits for another.
        this.waiting.splice(this.waitingHead, 0, client);
      }
    }
    const level = wasLoggingIn ? "warn" : "info";
    server.log[level]({ reason: server.closeReason, state: previous }, "server connection closed");
    if (wasLoggingIn) {
      this.connecting--;
      this.lastConnectFailureAt = this.pooler.now();
      if (this.lastConnectFailure === "" || !this.loginRefused) this.lastConnectFailure = server.closeReason;
      if (this.loginRefused) this.failWaiters();
      return;
    }
    this.dispatch();
  }

  private failWaiters(): void {
    const reason = this.lastConnectFailure;
    for (const c of this.welcomeWaiters.splice(0)) c.fail("server_login_failed", { pool: this.name, reason });
    for (let c = this.nextWaiter(); c !== undefined; c = this.nextWaiter()) {
      c.fail("server_login_failed", { pool: this.name, reason });
    }
  }

  private link(client: ClientSession, server: ServerConnection, now: number): void {
    this.active++;
    this.stats.serverAssignments++;
    server.activate(client, now);
    const sessionSets = client.session?.sets;
    const sync =
      parameterSyncQuery(client.params, server.params) +
      (sessionSets !== undefined ? sessionSyncQuery(sessionSets, server.sessionSets) : "");
    if (sync === "") {
      client.linked(server, now);
      return;
    }
    server.runQuery(
      sync,
      now,
      (r) => {
        if (r.status === -1) return; // the server closed: serverClosed already told the client.
        if (r.error !== null) {
          // A value the client asked for is one the server rejects: the client learns why, the server,
          // with its parameters now unknown, is not reused.
          this.active--;
          server.client = null;
          client.fail("protocol_violation", { reason: `invalid session parameter: ${r.error}` });
          server.close("parameter sync failed");
          return;
        }
        recordParameterSync(client.params, server.params);
        server.sessionSets.clear();
        for (const [name, sql] of sessionSets ?? []) server.sessionSets.set(name, sql);
        server.activate(client, this.pooler.now());
        client.linked(server, this.pooler.now());
      },
      client,
    );
  }

  /**
   * Takes back a server that was being prepared for a client (parameter sync) when the client left: none
   * of the client's bytes ever reached it, so it owes the client nothing.
   */
  unusedLink(server: ServerConnection): void {
    this.active--;
    server.client = null;
    this.makeIdle(server);
  }

  /** Takes a server back from its client, which owes nothing and is outside a transaction. */
  release(server: ServerConnection): void {
    const client = server.client;
    // Replies still expected at a releasing ReadyForQuery mean pgmux lost track of the exchange: which
    // statements the server holds is then unknown, so it is not lent again.
    const lostTrack = client?.replies != null && client.replies.size > 0;
    if (client !== null) client.unlinked();
    this.active--;
    if (lostTrack) {
      server.log.warn({ reason: "reply bookkeeping out of step" }, "closing server");
      server.deactivate(this.pooler.now());
      server.close("reply bookkeeping out of step");
      return;
    }
    const now = this.pooler.now();
    server.deactivate(now);
    // It may have been paused for the client's backpressure; the next client must find it reading.
    server.resumeReading();
    this.makeIdle(server);
    // A transaction boundary: while the pool winds down, this is where its client is let go.
    if (client !== null && this.closing) closeAtBoundary(client);
  }

  /**
   * Takes back a server whose client has gone, whatever state it left it in. A server in the middle of a
   * message is closed; one that owes replies is cancelled and drained; one inside a transaction is rolled
   * back; in session mode the reset query runs. Only a server that ends up idle (`I`) is reused.
   */
  reclaim(server: ServerConnection, client: ClientSession): void {
    this.active--;
    const now = this.pooler.now();
    server.client = null;
    server.resumeReading();
    if (!server.atMessageBoundary || !client.atMessageBoundary || server.copyBoth) {
      server.close("client left in the middle of a message");
      return;
    }
    if (client.statementsUnsettled) {
      // Whether the server now holds the statements being prepared for the client is unknown.
      server.close("client left while statements were being prepared");
      return;
    }
    const pins = client.session?.pins;
    if (pins?.has("load")) {
      // A loaded library stays loaded whatever is reset: the server goes with its client.
      server.close("client that ran LOAD left");
      return;
    }
    /** State the client tied to the server (LISTEN, locks, temp tables, ...) goes before anyone else's turn. */
    const discard = pins !== undefined && pins.size > 0;
    const repair = client.repairMessages();
    if (repair.owed > 0 || repair.bytes.length > 0) {
      if (repair.cancel) this.pooler.cancelQuery(server);
      server.runInternal(repair.bytes, repair.owed, now, (r) => this.afterDrain(server, r, discard));
      return;
    }
    this.afterDrain(server, { status: server.status, error: null }, discard);
  }

  private afterDrain(server: ServerConnection, r: InternalResult, discard = false): void {
    if (r.status === -1) return;
    const now = this.pooler.now();
    if (r.status !== TransactionStatus.Idle) {
      server.runQuery("ROLLBACK", now, (r2) => this.afterDrain(server, r2, discard));
      return;
    }
    const reset = this.pooler.settings.serverResetQuery;
    if (discard) {
      server.runQuery("DISCARD ALL", now, (r2) => this.afterOwnQuery(server, r2, "server_reset_query"));
      return;
    }
    if (reset !== "" && (this.mode === "session" || this.pooler.settings.serverResetQueryAlways)) {
      server.runQuery(reset, now, (r2) => this.afterOwnQuery(server, r2, "server_reset_query"));
      return;
    }
    this.makeIdle(server);
  }

  private afterOwnQuery(server: ServerConnection, r: InternalResult, what: string): void {
    if (r.status === -1) return;
    if (r.error !== null || r.status !== TransactionStatus.Idle) {
      server.close(`${what} failed: ${r.error ?? "left a transaction open"}`);
      return;
    }
    if (what === "server_reset_query") {
      // DISCARD ALL and friends reset every session parameter to the server's defaults (and DISCARD ALL
      // or DEALLOCATE ALL drop its prepared statements).
      server.statements?.clear();
      server.sessionSets.clear();
      server.params.clear();
      for (const [k, v] of this.welcome ?? []) server.params.set(k, v);
    }
    this.makeIdle(server);
  }

  private check(server: ServerConnection, now: number): void {
    server.runQuery(this.pooler.settings.serverCheckQuery ?? "", now, (r) =>
      this.afterOwnQuery(server, r, "server_check_query"),
    );
  }

  private makeIdle(server: ServerConnection): void {
    if (server.state === ServerState.Closed) return;
    const now = this.pooler.now();
    if (server.cancelsInFlight > 0) {
      // Held back until the cancel has landed (cancelFinished brings it back), but no longer anyone's.
      server.deactivate(now);
      return;
    }
    if (server.generation !== this.generation) {
      server.close("reconnect requested");
      return;
    }
    const surplus = this.surplusReason();
    if (surplus !== null) {
      server.close(surplus);
      return;
    }
    const s = this.pooler.settings;
    if (s.serverLifetimeMs > 0 && now - server.createdAt >= s.serverLifetimeMs && this.servers.size > this.minSize) {
      server.close("server_lifetime reached");
      return;
    }
    server.deactivate(now);
    server.lastUsedAt = now;
    this.idle.push(server);
    this.dispatch();
  }

  /** A cancel sent for this server finished: it may change hands again if it was held back for it. */
  cancelFinished(server: ServerConnection): void {
    server.cancelsInFlight--;
    if (server.cancelsInFlight > 0 || server.state === ServerState.Closed) return;
    const client = server.client;
    if (client !== null) {
      // The query ended while the cancel was on its way and the server was kept: it may go back now.
      if (server.state === ServerState.Active && client.releasable(server.status)) this.release(server);
    } else if (server.state === ServerState.Idle && !this.idle.includes(server)) {
      this.makeIdle(server);
    }
  }

  /** Closes idle servers the janitor found past server_idle_timeout or server_lifetime. */
  closeIdle(predicate: (server: ServerConnection) => string | null): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const server = this.idle[i]!;
      const reason = predicate(server);
      if (reason !== null) {
        this.idle.splice(i, 1);
        server.close(reason);
      }
    }
  }

  /** RECONNECT: idle servers close now, busy ones when they come back; new ones are opened as needed. */
  reconnect(): void {
    this.generation++;
    this.closeIdle(() => "reconnect requested");
  }

  /**
   * A reload's new settings for this pool's database (the pooler has already swapped its settings): the
   * mode and sizes apply from now on. A smaller pool closes idle servers beyond its size now and busy ones
   * as they come back; a larger one opens servers for clients that wait. A changed server address or
   * login replaces the servers as they become idle; no client is disconnected.
   */
  applySettings(database: DatabaseSettings): void {
    const previous = this.database;
    const limits = poolLimits(this.pooler.settings, database, this.user);
    const moved =
      previous.host !== database.host ||
      previous.port !== database.port ||
      previous.dbname !== database.dbname ||
      previous.user !== database.user ||
      limits.serverSecret !== this.serverSecret;
    this.database = database;
    const changes: Record<string, unknown> = {};
    if (limits.mode !== this.mode) changes.mode = limits.mode;
    if (limits.size !== this.size) changes.size = limits.size;
    if (limits.minSize !== this.minSize) changes.minSize = limits.minSize;
    if (limits.reserveSize !== this.reserveSize) changes.reserveSize = limits.reserveSize;
    if (limits.sessionState !== this.sessionState) changes.sessionState = limits.sessionState;
    this.mode = limits.mode;
    this.sessionState = limits.sessionState;
    this.size = limits.size;
    this.minSize = limits.minSize;
    this.reserveSize = limits.reserveSize;
    if ((this.statements === null) !== (statementCacheFor(this.mode, this.pooler.settings) === null)) {
      this.statements = statementCacheFor(this.mode, this.pooler.settings);
    }
    if (limits.serverUser !== this.serverUser) {
      // Servers logged in as the old user are replaced as they become idle (moved, below).
      changes.serverUser = limits.serverUser;
      this.serverUser = limits.serverUser;
    }
    this.serverSecret = limits.serverSecret;
    if (moved) {
      changes.server = `${database.host}:${database.port}/${database.dbname}`;
      this.clientScramKeys = null;
      this.reconnect();
    }
    if (Object.keys(changes).length > 0) this.log.info({ changes }, "pool settings changed by reload");
    this.closeIdle(() => this.surplusReason());
    this.dispatch();
  }

  /** Why a server coming back (or idle) should close rather than stay: the pool is winding down or too big. */
  private surplusReason(): string | null {
    if (this.pooler.draining) return "pgmux is shutting down";
    if (this.retired) return "database removed from the configuration";
    const limit = this.size + this.reserveSize;
    if (this.servers.size <= limit) return null;
    let open = 0;
    for (const s of this.servers) if (s.closeReason === "") open++;
    return open > limit ? "pool size lowered by reload" : null;
  }

  /**
   * The database was removed by a reload: clients holding no server leave now, the others at the end of
   * their transaction, servers as they come back.
   */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.log.info({ reason: "database removed from the configuration" }, "pool retiring");
    for (const c of this.pooler.clients) {
      if (c.pool !== this) continue;
      if (c.server === null) closeAtBoundary(c);
      else releaseIfAtBoundary(c);
    }
    this.closeIdle(() => "database removed from the configuration");
  }

  /** Whether nothing is left: no server and no client (a retired pool is then forgotten). */
  get empty(): boolean {
    if (this.servers.size > 0) return false;
    for (const c of this.pooler.clients) if (c.pool === this) return false;
    return true;
  }

  /** Closes one idle server (for another pool's sake, when a db/user limit is reached). */
  closeOneIdle(reason: string): boolean {
    const server = this.idle.shift();
    if (server === undefined) return false;
    server.close(reason);
    return true;
  }
}

/** A pool's mode, sizes and server login from the settings: the database's own, the user's, then the global ones. */
export function poolLimits(
  s: PoolerSettings,
  database: DatabaseSettings,
  user: string,
): {
  mode: PoolMode;
  sessionState: SessionStatePolicy;
  size: number;
  minSize: number;
  reserveSize: number;
  serverUser: string;
  serverSecret: string | undefined;
} {
  const userSettings = s.userSettings.get(user);
  const serverUser = database.user ?? user;
  return {
    mode: userSettings?.poolMode ?? database.poolMode ?? s.poolMode,
    sessionState: database.sessionState ?? s.sessionState,
    size: database.poolSize ?? userSettings?.poolSize ?? s.defaultPoolSize,
    minSize: database.minPoolSize ?? s.minPoolSize,
    reserveSize: database.reservePoolSize ?? s.reservePoolSize,
    serverUser,
    serverSecret: database.password ?? s.users.get(serverUser),
  };
}

/** The statement cache a pool of `mode` needs: none in session mode or with max_prepared_statements = 0. */
function statementCacheFor(mode: PoolMode, s: PoolerSettings): StatementCache | null {
  // Sharing reaches further than one server holds, so clients keep meeting each other's texts.
  return mode !== "session" && s.maxPreparedStatements > 0
    ? new StatementCache(Math.max(1000, s.maxPreparedStatements * 10))
    : null;
}
