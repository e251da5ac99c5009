import { randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import { chmodSync, rmSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { encodeErrorResponse, errorFields } from "@pgmux/protocol";
import type { Logger } from "pino";
import { forwardCancel } from "./cancel-forwarder.js";
import { VerifierCache } from "./client-auth.js";
import { ClientSession, ClientState, closeAfterFlush } from "./client-session.js";
import { type DrainOptions, type DrainResult, drainPooler } from "./drain.js";
import { sweep } from "./janitor.js";
import { Pool } from "./pool.js";
import { formatPoolerMessage, PoolerErrors } from "./pooler-errors.js";
import type { DatabaseSettings, PoolerSettings } from "./pooler-settings.js";
import { PoolerStats } from "./pooler-stats.js";
import { type ReloadReport, reloadSettings } from "./reload-settings.js";
import type { ServerConnection } from "./server-connection.js";
import { Tracer } from "./tracer.js";

export interface PoolerOptions {
  readonly settings: PoolerSettings;
  readonly log: Logger;
  /** Milliseconds on a monotonic clock; injected by tests. */
  readonly now?: () => number;
  /** How often the janitor sweeps for timeouts. */
  readonly janitorIntervalMs?: number;
  /**
   * Set when this pooler is one of several worker processes sharing the port (workers: N): its listeners
   * bind with SO_REUSEPORT, its cancel keys carry its index, and a cancel request for another worker's key
   * is handed to `forward` (the supervisor routes it to that worker).
   */
  readonly worker?: WorkerIdentity;
}

export interface WorkerIdentity {
  readonly index: number;
  readonly count: number;
  forward(pid: number, key: Buffer): void;
}

/** Where a listener is bound, once started. */
export interface ListenAddress {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
}

const CANCEL_TIMEOUT_MS = 5000;

/**
 * The engine: accepts clients, authenticates them, hands them pools, routes cancel requests, and runs the
 * janitor. It owns every client and pool; pools own their servers.
 */
export class Pooler {
  settings: PoolerSettings;
  readonly log: Logger;
  readonly stats = new PoolerStats();
  readonly now: () => number;
  readonly pools = new Map<string, Pool>();
  readonly clients = new Set<ClientSession>();
  /** Live protocol traces; clients get a tap only while one matches them. */
  readonly tracer = new Tracer(this.clients);
  readonly verifiers = new VerifierCache();
  private readonly cancelKeys = new Map<number, ClientSession>();
  private readonly serversPerDatabase = new Map<string, number>();
  private readonly serversPerUser = new Map<string, number>();
  private readonly openedAs = new WeakMap<ServerConnection, string>();
  private readonly listeners: net.Server[] = [];
  private janitor: NodeJS.Timeout | null = null;
  private readonly janitorIntervalMs: number;
  private shuttingDown = false;
  /** Set by drain(): new clients are refused, each client is let go at its next transaction boundary. */
  draining = false;
  /** PAUSE: no server is handed to a client until resume(); waiting clients wait, linked ones finish. */
  paused = false;
  readonly addresses: ListenAddress[] = [];
  readonly worker: WorkerIdentity | null;

  constructor(options: PoolerOptions) {
    this.worker = options.worker ?? null;
    this.settings = options.settings;
    this.log = options.log;
    this.now = options.now ?? (() => performance.now());
    this.janitorIntervalMs = options.janitorIntervalMs ?? 250;
  }

  /** Binds every listener (TCP addresses and the Unix socket) and starts the janitor. */
  async start(): Promise<void> {
    const s = this.settings;
    for (const addr of s.listenAddrs) {
      const host = addr === "*" ? "0.0.0.0" : addr;
      const server = this.makeListener();
      await listen(server, { host, port: s.listenPort, ...(this.worker !== null ? { reusePort: true } : {}) });
      const bound = server.address() as net.AddressInfo;
      this.addresses.push({ host: bound.address, port: bound.port });
    }
    if (s.unixSocketDir !== "") {
      const port = this.addresses[0]?.port ?? s.listenPort;
      const path = join(s.unixSocketDir, `.s.PGSQL.${port}`);
      rmSync(path, { force: true });
      const server = this.makeListener();
      await listen(server, { path });
      chmodSync(path, s.unixSocketMode);
      this.addresses.push({ path });
    }
    this.janitor = setInterval(() => sweep(this, this.now()), this.janitorIntervalMs);
    this.janitor.unref();
    this.log.info({ addresses: this.addresses }, "pgmux listening");
  }

  private makeListener(): net.Server {
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    server.on("error", (err) => this.log.error({ err }, "listener error"));
    this.listeners.push(server);
    return server;
  }

  private accept(socket: net.Socket): void {
    this.stats.clientsAccepted++;
    if (this.shuttingDown || this.draining) {
      this.refuse(socket, "shutting_down", {});
      return;
    }
    if (this.clients.size >= this.settings.maxClientConn) {
      this.refuse(socket, "too_many_clients", { limit: this.settings.maxClientConn });
      return;
    }
    const client = new ClientSession(this, socket, this.now());
    this.clients.add(client);
  }

  /** Answers a connection pgmux will not serve with an ErrorResponse, before reading anything from it. */
  private refuse(socket: net.Socket, code: "too_many_clients" | "shutting_down", details: Record<string, number>) {
    const spec = PoolerErrors[code];
    this.stats.countRefused(code);
    socket.on("error", () => {});
    const message = formatPoolerMessage(spec.message, details);
    socket.write(
      encodeErrorResponse({ fields: errorFields({ severity: spec.severity, code: spec.sqlState, message }) }),
    );
    closeAfterFlush(socket);
  }

  /** Stops listening, closes every client and server, stops the janitor. */
  async stop(): Promise<void> {
    this.shuttingDown = true;
    if (this.janitor !== null) clearInterval(this.janitor);
    this.janitor = null;
    // close() stops accepting at once but reports only when every connection has gone: tell them first.
    const closed = Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    this.listeners.length = 0;
    for (const client of [...this.clients]) client.fail("shutting_down", {});
    for (const pool of this.pools.values()) for (const server of [...pool.servers]) server.close("pgmux stopping");
    await closed;
  }

  /** The pool for a client's database and user, created on first use; null for an unknown database. */
  poolFor(database: string, user: string): Pool | null {
    const key = `${database}\0${user}`;
    let pool = this.pools.get(key);
    if (pool !== undefined && !pool.retired) return pool;
    const db = this.databaseFor(database);
    if (db === null) return null;
    // A pool still draining from an earlier removal of this database keeps running under another key.
    if (pool !== undefined) this.pools.set(`${key}\0retired${this.stats.clientsAccepted}`, pool);
    this.pools.delete(key);
    pool = new Pool(this, db, user);
    this.pools.set(key, pool);
    return pool;
  }

  /** The settings a client asking for database `name` gets: its entry, or the `*` fallback; null if neither. */
  databaseFor(name: string): DatabaseSettings | null {
    const db = this.settings.databases.get(name);
    if (db !== undefined) return db;
    const fallback = this.settings.fallbackDatabase;
    if (fallback === null) return null;
    return { ...fallback, name, dbname: name };
  }

  /** Whether a new server for `pool` fits max_db_connections and max_user_connections; frees room if it can. */
  mayOpenServer(pool: Pool): boolean {
    const s = this.settings;
    const dbLimit = pool.database.maxDbConnections ?? s.maxDbConnections;
    const userLimit = s.userSettings.get(pool.user)?.maxUserConnections ?? s.maxUserConnections;
    const dbKey = pool.database.name;
    const userKey = pool.serverUser;
    if (dbLimit > 0 && (this.serversPerDatabase.get(dbKey) ?? 0) >= dbLimit) {
      this.closeIdleElsewhere(pool, (p) => p.database.name === dbKey);
      return false;
    }
    if (userLimit > 0 && (this.serversPerUser.get(userKey) ?? 0) >= userLimit) {
      this.closeIdleElsewhere(pool, (p) => p.serverUser === userKey);
      return false;
    }
    return true;
  }

  /** Closes an idle server of another pool sharing a limit, so the starved pool can open one. */
  private closeIdleElsewhere(starved: Pool, sharesLimit: (p: Pool) => boolean): void {
    for (const p of this.pools.values()) {
      if (p !== starved && sharesLimit(p) && p.closeOneIdle("making room for another pool under a shared limit")) {
        return;
      }
    }
  }

  serverOpened(pool: Pool, server: ServerConnection): void {
    this.stats.serversOpened++;
    bump(this.serversPerDatabase, pool.database.name, 1);
    bump(this.serversPerUser, pool.serverUser, 1);
    // A reload may change the pool's server user: the books close under the user the server opened as.
    this.openedAs.set(server, pool.serverUser);
  }

  serverClosed(pool: Pool, server: ServerConnection): void {
    bump(this.serversPerDatabase, pool.database.name, -1);
    bump(this.serversPerUser, this.openedAs.get(server) ?? pool.serverUser, -1);
    // A slot under a shared limit opened: pools of the same database or user with waiters may use it.
    for (const p of this.pools.values()) if (p !== pool && p.waitingCount > 0) p.dispatch();
  }

  /** pgmux's own BackendKeyData for a client: random, unique pid and a random key. */
  registerCancelKey(client: ClientSession): { pid: number; key: Buffer } {
    let pid: number;
    const w = this.worker;
    // A worker's keys are ≡ its index (mod the worker count), so any worker can tell whose a key is.
    do
      pid =
        w === null ? randomInt(1, 2 ** 31 - 1) : randomInt(1, Math.floor((2 ** 31 - 1) / w.count)) * w.count + w.index;
    while (this.cancelKeys.has(pid));
    this.cancelKeys.set(pid, client);
    return { pid, key: randomBytes(4) };
  }

  /**
   * A CancelRequest with pgmux's key: cancels that client's running query on its server, and nothing else.
   * A key that matches no client, or a client that holds no server or owes no reply, cancels nothing.
   */
  cancelRequest(pid: number, key: Buffer): void {
    const w = this.worker;
    if (w !== null && pid % w.count !== w.index) {
      w.forward(pid, key);
      return;
    }
    const client = this.cancelKeys.get(pid);
    if (client === undefined || client.cancelKey.length !== key.length || !timingSafeEqual(client.cancelKey, key)) {
      this.log.debug({ pid }, "cancel request with an unknown key ignored");
      return;
    }
    const server = client.server;
    if (server === null || client.state !== ClientState.Active || client.owed === 0) {
      client.log.debug("cancel request for a client with no query running ignored");
      return;
    }
    this.cancelQuery(server);
  }

  /**
   * Cancels what `server` runs. Until PostgreSQL has taken the request, the server does not change hands,
   * so a late cancel can never land on the next client's query.
   */
  cancelQuery(server: ServerConnection): void {
    const db = server.pool.database;
    server.cancelsInFlight++;
    forwardCancel(db.host, db.port, server.backendPid, server.backendKey, CANCEL_TIMEOUT_MS, (error) => {
      if (error !== null) server.log.warn({ reason: error }, "cancel request failed");
      server.pool.cancelFinished(server);
    });
  }

  /**
   * Applies a reloaded configuration to the running engine (see reload-settings.ts): pool sizes and modes
   * change in place, removed databases drain, new ones appear on first use. Listener settings need a restart.
   */
  reload(settings: PoolerSettings): ReloadReport {
    return reloadSettings(this, settings);
  }

  /**
   * Graceful shutdown (see drain.ts): refuses new clients and lets each client go at its next transaction
   * boundary; resolves when all are gone, or cancels what still runs once `timeoutMs` has passed. Call
   * stop() afterwards.
   */
  drain(options: DrainOptions = {}): Promise<DrainResult> {
    return drainPooler(this, options);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const pool of this.pools.values()) pool.dispatch();
  }

  /** RECONNECT: every pool replaces its servers as they become idle. */
  reconnect(): void {
    for (const pool of this.pools.values()) pool.reconnect();
  }

  clientClosed(client: ClientSession): void {
    this.clients.delete(client);
    if (client.cancelPid !== 0 && this.cancelKeys.get(client.cancelPid) === client) {
      this.cancelKeys.delete(client.cancelPid);
    }
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
