/**
 * PgBouncer's SQL admin console: a client that logs in to the virtual database `pgbouncer` (or `pgmux`)
 * as a user in admin_users or stats_users talks to pgmux itself instead of a pool. It speaks the simple
 * query protocol only and answers PgBouncer's commands with the column names and types of
 * **PgBouncer 1.18** (the release whose SHOW output pgbouncer_exporter, Datadog's and Telegraf's checks
 * parse), so those tools work unchanged:
 *
 *   SHOW POOLS | STATS | STATS_TOTALS | STATS_AVERAGES | CLIENTS | SERVERS | DATABASES | USERS | LISTS |
 *        CONFIG | VERSION | STATE | HELP
 *   SHOW PINS (pgmux's own: clients pinned to their server, by reason)
 *   PAUSE | RESUME | RECONNECT | RELOAD | KILL_CLIENT <id> | SHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS]
 *
 * Stats users may only SHOW (anything else is 42501). Types follow PgBouncer's result descriptions: text
 * (25), int4 (23) for counts, numeric (1700) for the statistics; timestamps are text, as PgBouncer sends
 * them. Actions go through a PoolerControl, shared with the HTTP admin API (which registers its own with
 * `configureAdminConsole`); until then the engine's own methods are used where they exist.
 *
 * The console is not on the hot path: it decodes every message and builds replies from snapshots.
 */
import { readFileSync } from "node:fs";
import {
  decodeFrontendMessage,
  encodeBackendKeyData,
  encodeCommandComplete,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeRowDescription,
  errorFields,
  FrameReader,
  FrontendMessageType,
  PrebuiltBackendMessage,
  ProtocolError,
  readyForQueryBytes,
  TransactionStatus,
} from "@pgmux/protocol";
import type { ClientSession } from "./client-session.js";
import { ClientState } from "./client-session.js";
import { type PgmuxConfig, PgmuxConfigSchema, RESERVED_DATABASE_NAMES } from "./config/config-schema.js";
import { redactConfig } from "./config/redact-config.js";
import type { Pooler } from "./pooler.js";
import { type DatabaseSettings, DEFAULT_SETTINGS, type PoolerSettings } from "./pooler-settings.js";
import { ServerState } from "./server-connection.js";
import { pgbouncerServerState, poolHistograms, type SnapshotClock, snapshotClock, snapshotPool } from "./snapshot.js";

/** The PgBouncer release whose console output pgmux reproduces. */
export const PGBOUNCER_COMPAT_VERSION = "1.18.0";

let pgmuxVersion: string | undefined;

/** pgmux's version (the package version of @pgmux/core). */
export function pgmuxPackageVersion(): string {
  if (pgmuxVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
      pgmuxVersion = pkg.version ?? "0.0.0";
    } catch {
      pgmuxVersion = "0.0.0";
    }
  }
  return pgmuxVersion;
}

// ---- control actions ----------------------------------------------------------------------------------

export type ShutdownMode = "immediate" | "graceful";

/**
 * What an operator may ask of a running pgmux, from the SQL console or the HTTP API. Every method may throw
 * ControlUnavailableError (the engine or the process cannot do it yet) or ControlStateError (not now).
 */
export interface PoolerControl {
  /** Stop handing servers to clients: waiting clients wait, transactions in progress finish. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Close idle servers now and busy ones when they are released, so every pool reconnects. */
  reconnect(): Promise<void>;
  /** Re-read the configuration file. */
  reload(): Promise<void>;
  /** Disconnect one client; false when no client has that id. */
  killClient(id: number): Promise<boolean>;
  shutdown(mode: ShutdownMode): Promise<void>;
  isPaused(): boolean;
}

/** The action exists but nothing can carry it out yet (the engine or the command was not wired for it). */
export class ControlUnavailableError extends Error {
  constructor(
    readonly action: string,
    message: string,
  ) {
    super(message);
    this.name = "ControlUnavailableError";
  }
}

/** The action cannot be done in the current state (resume when not paused, ...). */
export class ControlStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ControlStateError";
  }
}

/** The engine methods a control uses when the Pooler has them (see the admin docs for the plan). */
interface EngineControlMethods {
  pause?(): void | Promise<void>;
  resume?(): void | Promise<void>;
  reconnect?(): void | Promise<void>;
  killClient?(id: number): boolean;
  readonly paused?: boolean;
}

/**
 * The control a pooler offers by itself: the engine's pause/resume/reconnect when it has them, a kill that
 * sends the client a FATAL 57P01 and closes it, and a shutdown that stops the pooler. Reload needs the file
 * pgmux was started from, so only the pgmux command can provide it.
 */
export function engineControl(pooler: Pooler): PoolerControl {
  const engine = pooler as Pooler & EngineControlMethods;
  const missing = (action: string): ControlUnavailableError =>
    new ControlUnavailableError(
      action,
      `${action} is not available: this pgmux engine has no Pooler.${action}() yet (see docs/admin.md, "Control actions")`,
    );
  return {
    async pause() {
      if (typeof engine.pause !== "function") throw missing("pause");
      if (engine.paused === true) throw new ControlStateError("pgmux is already paused");
      await engine.pause();
    },
    async resume() {
      if (typeof engine.resume !== "function") throw missing("resume");
      if (engine.paused === false) throw new ControlStateError("pgmux is not paused");
      await engine.resume();
    },
    async reconnect() {
      if (typeof engine.reconnect !== "function") throw missing("reconnect");
      await engine.reconnect();
    },
    async reload() {
      throw new ControlUnavailableError(
        "reload",
        "reload is not available: only the pgmux command, which knows the configuration file, can reload it",
      );
    },
    async killClient(id) {
      if (typeof engine.killClient === "function") return engine.killClient(id);
      for (const client of pooler.clients) {
        if (client.id !== id || client.state === ClientState.Closed) continue;
        client.socket.write(consoleError("FATAL", "57P01", "terminating connection due to administrator command"));
        client.close("killed by an administrator", true);
        return true;
      }
      return false;
    },
    async shutdown() {
      await pooler.stop();
    },
    isPaused() {
      return engine.paused === true;
    },
  };
}

export interface AdminConsoleOptions {
  /** The control shared with the HTTP admin API; defaults to engineControl(pooler). */
  readonly control?: PoolerControl;
  /** The loaded configuration, for SHOW CONFIG (redacted before it is shown). */
  readonly config?: () => PgmuxConfig | null;
}

interface ConsoleContext {
  control: PoolerControl;
  config: () => PgmuxConfig | null;
  averages: AveragesWindow;
}

const contexts = new WeakMap<Pooler, ConsoleContext>();

function contextOf(pooler: Pooler): ConsoleContext {
  let ctx = contexts.get(pooler);
  if (ctx === undefined) {
    ctx = { control: engineControl(pooler), config: () => null, averages: new AveragesWindow() };
    contexts.set(pooler, ctx);
  }
  return ctx;
}

/** Gives the console of `pooler` its control and configuration (the admin server calls this). */
export function configureAdminConsole(pooler: Pooler, options: AdminConsoleOptions): void {
  const ctx = contextOf(pooler);
  if (options.control !== undefined) ctx.control = options.control;
  if (options.config !== undefined) ctx.config = options.config;
}

/** The control the console of `pooler` uses. */
export function adminControl(pooler: Pooler): PoolerControl {
  return contextOf(pooler).control;
}

// ---- PgBouncer 1.18 views -----------------------------------------------------------------------------

/** Column type OIDs, as PgBouncer's result descriptions use them. */
export const PgType = { text: 25, int4: 23, int8: 20, numeric: 1700 } as const;
export type PgType = (typeof PgType)[keyof typeof PgType];

export interface ConsoleColumn {
  readonly name: string;
  readonly type: PgType;
}

export type ConsoleCell = string | number | null;

export interface ConsoleResult {
  readonly columns: readonly ConsoleColumn[];
  readonly rows: ConsoleCell[][];
}

/** PgBouncer's type letters: s text, i int4, q int8, N numeric, T timestamp sent as text. */
function columns(spec: readonly (readonly [string, "s" | "i" | "q" | "N" | "T"])[]): ConsoleColumn[] {
  const oid = { s: PgType.text, T: PgType.text, i: PgType.int4, q: PgType.int8, N: PgType.numeric } as const;
  return spec.map(([name, letter]) => ({ name, type: oid[letter] }));
}

const POOLS_COLUMNS = columns([
  ["database", "s"],
  ["user", "s"],
  ["cl_active", "i"],
  ["cl_waiting", "i"],
  ["cl_active_cancel_req", "i"],
  ["cl_waiting_cancel_req", "i"],
  ["sv_active", "i"],
  ["sv_active_cancel", "i"],
  ["sv_being_canceled", "i"],
  ["sv_idle", "i"],
  ["sv_used", "i"],
  ["sv_tested", "i"],
  ["sv_login", "i"],
  ["maxwait", "i"],
  ["maxwait_us", "i"],
  ["pool_mode", "s"],
]);

const STAT_NAMES = [
  "xact_count",
  "query_count",
  "bytes_received",
  "bytes_sent",
  "xact_time",
  "query_time",
  "wait_time",
];

const STATS_COLUMNS = columns([
  ["database", "s"],
  ["total_xact_count", "N"],
  ["total_query_count", "N"],
  ["total_received", "N"],
  ["total_sent", "N"],
  ["total_xact_time", "N"],
  ["total_query_time", "N"],
  ["total_wait_time", "N"],
  ["avg_xact_count", "N"],
  ["avg_query_count", "N"],
  ["avg_recv", "N"],
  ["avg_sent", "N"],
  ["avg_xact_time", "N"],
  ["avg_query_time", "N"],
  ["avg_wait_time", "N"],
]);

const STATS_TOTALS_COLUMNS = columns([["database", "s"], ...STAT_NAMES.map((n) => [n, "N"] as const)]);
const STATS_AVERAGES_COLUMNS = STATS_TOTALS_COLUMNS;

const SOCKET_COLUMNS = columns([
  ["type", "s"],
  ["user", "s"],
  ["database", "s"],
  ["state", "s"],
  ["addr", "s"],
  ["port", "i"],
  ["local_addr", "s"],
  ["local_port", "i"],
  ["connect_time", "T"],
  ["request_time", "T"],
  ["wait", "i"],
  ["wait_us", "i"],
  ["close_needed", "i"],
  ["ptr", "s"],
  ["link", "s"],
  ["remote_pid", "i"],
  ["tls", "s"],
  ["application_name", "s"],
]);

const DATABASES_COLUMNS = columns([
  ["name", "s"],
  ["host", "s"],
  ["port", "i"],
  ["database", "s"],
  ["force_user", "s"],
  ["pool_size", "i"],
  ["min_pool_size", "i"],
  ["reserve_pool", "i"],
  ["pool_mode", "s"],
  ["max_connections", "i"],
  ["current_connections", "i"],
  ["paused", "i"],
  ["disabled", "i"],
]);

const USERS_COLUMNS = columns([
  ["name", "s"],
  ["pool_mode", "s"],
]);

const LISTS_COLUMNS = columns([
  ["list", "s"],
  ["items", "i"],
]);

const CONFIG_COLUMNS = columns([
  ["key", "s"],
  ["value", "s"],
  ["default", "s"],
  ["changeable", "s"],
]);

/** SHOW PINS, pgmux's own: one row per pinned client and reason. */
const PINS_COLUMNS = columns([
  ["id", "i"],
  ["user", "s"],
  ["database", "s"],
  ["reason", "s"],
  ["count", "i"],
]);

const VERSION_COLUMNS = columns([["version", "s"]]);
const STATE_COLUMNS = columns([
  ["key", "s"],
  ["value", "s"],
]);

/** The SHOW commands the console answers. */
export const SHOW_VIEWS = [
  "pools",
  "stats",
  "stats_totals",
  "stats_averages",
  "clients",
  "servers",
  "databases",
  "users",
  "lists",
  "config",
  "version",
  "state",
  "pins",
] as const;
export type ShowView = (typeof SHOW_VIEWS)[number];

export function isShowView(name: string): name is ShowView {
  return (SHOW_VIEWS as readonly string[]).includes(name);
}

/** SHOW VERSION's value: PgBouncer's version first, so tools that parse it find the dialect they know. */
export function consoleVersionString(): string {
  return `PgBouncer ${PGBOUNCER_COMPAT_VERSION} (pgmux ${pgmuxPackageVersion()})`;
}

/** The rows of a SHOW command, with PgBouncer 1.18's columns (SHOW PINS is pgmux's own). */
export function pgbouncerView(pooler: Pooler, view: ShowView): ConsoleResult {
  const clock = snapshotClock(pooler);
  const ctx = contextOf(pooler);
  switch (view) {
    case "pools":
      return { columns: POOLS_COLUMNS, rows: poolsRows(pooler, clock) };
    case "stats":
      return { columns: STATS_COLUMNS, rows: statsRows(pooler, ctx, clock, "both") };
    case "stats_totals":
      return { columns: STATS_TOTALS_COLUMNS, rows: statsRows(pooler, ctx, clock, "totals") };
    case "stats_averages":
      return { columns: STATS_AVERAGES_COLUMNS, rows: statsRows(pooler, ctx, clock, "averages") };
    case "clients":
      return { columns: SOCKET_COLUMNS, rows: clientRows(pooler, clock) };
    case "servers":
      return { columns: SOCKET_COLUMNS, rows: serverRows(pooler, clock) };
    case "databases":
      return { columns: DATABASES_COLUMNS, rows: databaseRows(pooler, ctx) };
    case "users":
      return { columns: USERS_COLUMNS, rows: userRows(pooler.settings) };
    case "lists":
      return { columns: LISTS_COLUMNS, rows: listRows(pooler) };
    case "config":
      return { columns: CONFIG_COLUMNS, rows: configRows(pooler.settings, ctx.config()) };
    case "version":
      return { columns: VERSION_COLUMNS, rows: [[consoleVersionString()]] };
    case "pins":
      return { columns: PINS_COLUMNS, rows: pinRows(pooler) };
    case "state": {
      const paused = ctx.control.isPaused();
      return {
        columns: STATE_COLUMNS,
        rows: [
          ["active", paused ? "no" : "yes"],
          ["paused", paused ? "yes" : "no"],
          ["suspended", "no"],
        ],
      };
    }
  }
}

function poolsRows(pooler: Pooler, clock: SnapshotClock): ConsoleCell[][] {
  const rows: ConsoleCell[][] = [];
  for (const pool of pooler.pools.values()) {
    const s = snapshotPool(pool, pooler.clients, clock);
    const waitUs = Math.round(s.maxWaitSeconds * 1e6);
    rows.push([
      s.database,
      s.user,
      s.clients.active + s.clients.idle,
      s.clients.waiting,
      0,
      0,
      s.servers.active,
      0,
      s.servers.beingCanceled,
      s.servers.idle,
      s.servers.used,
      s.servers.tested,
      s.servers.login,
      Math.floor(waitUs / 1e6),
      waitUs % 1e6,
      s.mode,
    ]);
  }
  return rows;
}

/** Per-database totals in PgBouncer's units: counts, bytes, microseconds. */
interface DatabaseTotals {
  xact_count: number;
  query_count: number;
  bytes_received: number;
  bytes_sent: number;
  xact_time: number;
  query_time: number;
  wait_time: number;
}

function databaseTotals(pooler: Pooler): Map<string, DatabaseTotals> {
  const out = new Map<string, DatabaseTotals>();
  for (const pool of pooler.pools.values()) {
    const name = pool.database.name;
    let t = out.get(name);
    if (t === undefined) {
      t = {
        xact_count: 0,
        query_count: 0,
        bytes_received: 0,
        bytes_sent: 0,
        xact_time: 0,
        query_time: 0,
        wait_time: 0,
      };
      out.set(name, t);
    }
    const s = pool.stats;
    t.xact_count += s.transactions;
    t.query_count += s.queries;
    t.bytes_received += s.bytesFromClients;
    t.bytes_sent += s.bytesFromServers;
    t.xact_time += s.transactionMicros;
    t.query_time += (poolHistograms(pool)?.query.sumMs ?? 0) * 1000;
    t.wait_time += s.waitMicros;
  }
  return out;
}

/**
 * Averages over the last stats period, as PgBouncer computes them: per second for counts, bytes and wait
 * time; per transaction (query) for transaction (query) time. The window moves when a reader comes after
 * the period has passed, so no timer runs for it.
 */
class AveragesWindow {
  private older: { at: number; totals: Map<string, DatabaseTotals> } | null = null;
  private newer: { at: number; totals: Map<string, DatabaseTotals> } | null = null;

  averages(pooler: Pooler, periodMs: number, current: Map<string, DatabaseTotals>): Map<string, DatabaseTotals> {
    const now = pooler.now();
    if (this.newer === null) {
      // The first look: the window starts at zero when the pooler started counting.
      this.older = { at: 0, totals: new Map() };
      this.newer = { at: now, totals: current };
    } else if (now - this.newer.at >= periodMs) {
      this.older = this.newer;
      this.newer = { at: now, totals: current };
    }
    const older = this.older!;
    const seconds = Math.max((now - older.at) / 1000, 1e-3);
    const out = new Map<string, DatabaseTotals>();
    for (const [name, cur] of current) {
      const old = older.totals.get(name);
      const d = (k: keyof DatabaseTotals): number => cur[k] - (old?.[k] ?? 0);
      const xacts = d("xact_count");
      const queries = d("query_count");
      out.set(name, {
        xact_count: Math.floor(xacts / seconds),
        query_count: Math.floor(queries / seconds),
        bytes_received: Math.floor(d("bytes_received") / seconds),
        bytes_sent: Math.floor(d("bytes_sent") / seconds),
        xact_time: xacts > 0 ? Math.floor(d("xact_time") / xacts) : 0,
        query_time: queries > 0 ? Math.floor(d("query_time") / queries) : 0,
        wait_time: Math.floor(d("wait_time") / seconds),
      });
    }
    return out;
  }
}

function statsPeriodMs(config: PgmuxConfig | null): number {
  return (config?.pgmux.stats_period ?? 60) * 1000;
}

function statsRows(
  pooler: Pooler,
  ctx: ConsoleContext,
  _clock: SnapshotClock,
  which: "totals" | "averages" | "both",
): ConsoleCell[][] {
  const totals = databaseTotals(pooler);
  const averages = ctx.averages.averages(pooler, statsPeriodMs(ctx.config()), totals);
  const rows: ConsoleCell[][] = [];
  const values = (t: DatabaseTotals): number[] => STAT_NAMES.map((k) => Math.floor(t[k as keyof DatabaseTotals]));
  for (const [name, t] of totals) {
    const avg = averages.get(name)!;
    if (which === "totals") rows.push([name, ...values(t)]);
    else if (which === "averages") rows.push([name, ...values(avg)]);
    else rows.push([name, ...values(t), ...values(avg)]);
  }
  return rows;
}

/** PgBouncer's text form of a timestamp: `2024-05-01 12:00:00 UTC`. */
function pgbouncerTime(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function wallTime(clock: SnapshotClock, t: number): number {
  return clock.wallNow - (clock.now - t);
}

function splitRemote(remote: string): [string, number] {
  const colon = remote.lastIndexOf(":");
  if (colon < 0) return [remote, 0];
  const port = Number(remote.slice(colon + 1));
  return Number.isInteger(port) ? [remote.slice(0, colon), port] : [remote, 0];
}

function clientRows(pooler: Pooler, clock: SnapshotClock): ConsoleCell[][] {
  const rows: ConsoleCell[][] = [];
  const sorted = [...pooler.clients].sort((a, b) => a.id - b.id);
  for (const c of sorted) {
    let state: string;
    switch (c.state) {
      case ClientState.Idle:
      case ClientState.Active:
        state = "active";
        break;
      case ClientState.Waiting:
      case ClientState.Welcome:
        state = "waiting";
        break;
      default:
        continue; // logging in or gone: PgBouncer lists neither
    }
    const waitUs = state === "waiting" && c.waitingSince > 0 ? Math.round((clock.now - c.waitingSince) * 1000) : 0;
    const [addr, port] = splitRemote(c.remote);
    rows.push([
      "C",
      c.user,
      c.database,
      state,
      addr,
      port,
      c.socket.localAddress ?? "",
      c.socket.localPort ?? 0,
      pgbouncerTime(wallTime(clock, c.connectedAt)),
      pgbouncerTime(wallTime(clock, c.lastActivityAt)),
      Math.floor(waitUs / 1e6),
      waitUs % 1e6,
      0,
      String(c.id),
      c.server !== null ? String(c.server.id) : "",
      0,
      "",
      c.params.get("application_name") ?? "",
    ]);
  }
  return rows;
}

/** Each pinned client's reasons, with how many things of that kind hold it (channels, locks, tables, ...). */
function pinRows(pooler: Pooler): ConsoleCell[][] {
  const rows: ConsoleCell[][] = [];
  const sorted = [...pooler.clients].sort((a, b) => a.id - b.id);
  for (const c of sorted) {
    if (c.state === ClientState.Closed || c.session?.pinned !== true) continue;
    const pins = [...c.session.pins].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [reason, count] of pins) rows.push([c.id, c.user, c.database, reason, count]);
  }
  return rows;
}

function serverRows(pooler: Pooler, clock: SnapshotClock): ConsoleCell[][] {
  const rows: ConsoleCell[][] = [];
  for (const pool of pooler.pools.values()) {
    for (const s of [...pool.servers].sort((a, b) => a.id - b.id)) {
      if (s.state === ServerState.Closed) continue;
      const linked = s.client;
      rows.push([
        "S",
        pool.serverUser,
        pool.database.name,
        pgbouncerServerState(s, pool, clock.now),
        pool.database.host,
        pool.database.port,
        s.socket.localAddress ?? "",
        s.socket.localPort ?? 0,
        pgbouncerTime(wallTime(clock, s.createdAt)),
        pgbouncerTime(wallTime(clock, s.lastUsedAt)),
        0,
        0,
        0,
        String(s.id),
        linked !== null ? String(linked.id) : "",
        s.backendPid,
        "",
        linked?.params.get("application_name") ?? s.params.get("application_name") ?? "",
      ]);
    }
  }
  return rows;
}

function databaseRows(pooler: Pooler, ctx: ConsoleContext): ConsoleCell[][] {
  const s = pooler.settings;
  const paused = ctx.control.isPaused() ? 1 : 0;
  const serversByDatabase = new Map<string, number>();
  for (const pool of pooler.pools.values()) {
    const name = pool.database.name;
    serversByDatabase.set(name, (serversByDatabase.get(name) ?? 0) + pool.servers.size);
  }
  const rows: ConsoleCell[][] = [];
  const seen = new Set<string>();
  const add = (db: DatabaseSettings): void => {
    if (seen.has(db.name)) return;
    seen.add(db.name);
    rows.push([
      db.name,
      db.host,
      db.port,
      db.dbname,
      db.user ?? null,
      db.poolSize ?? s.defaultPoolSize,
      db.minPoolSize ?? s.minPoolSize,
      db.reservePoolSize ?? s.reservePoolSize,
      db.poolMode ?? null,
      db.maxDbConnections ?? s.maxDbConnections,
      serversByDatabase.get(db.name) ?? 0,
      paused,
      0,
    ]);
  };
  for (const db of s.databases.values()) add(db);
  // Databases reached through the "*" entry appear once a pool for them exists, as in PgBouncer.
  for (const pool of pooler.pools.values()) add(pool.database);
  rows.push(["pgbouncer", null, s.listenPort, "pgbouncer", "pgbouncer", 2, 0, 0, "statement", 0, 0, 0, 0]);
  return rows;
}

function userRows(s: PoolerSettings): ConsoleCell[][] {
  const names = new Set<string>([...s.users.keys(), ...s.userSettings.keys()]);
  return [...names].sort().map((name) => [name, s.userSettings.get(name)?.poolMode ?? null]);
}

function listRows(pooler: Pooler): ConsoleCell[][] {
  const s = pooler.settings;
  const databases = new Set<string>([...s.databases.keys()]);
  for (const pool of pooler.pools.values()) databases.add(pool.database.name);
  let login = 0;
  let used = 0;
  for (const c of pooler.clients) {
    if (c.state === ClientState.Closed) continue;
    used++;
    if (c.state === ClientState.Startup || c.state === ClientState.Auth) login++;
  }
  let servers = 0;
  for (const pool of pooler.pools.values()) servers += pool.servers.size;
  return [
    ["databases", databases.size + 1],
    ["users", new Set([...s.users.keys(), ...s.userSettings.keys()]).size],
    ["pools", pooler.pools.size],
    ["free_clients", 0],
    ["used_clients", used],
    ["login_clients", login],
    ["free_servers", 0],
    ["used_servers", servers],
    ["dns_names", 0],
    ["dns_zones", 0],
    ["dns_queries", 0],
    ["dns_pending", 0],
  ];
}

/** Settings whose change needs a restart, as PgBouncer marks them. */
const NOT_CHANGEABLE = new Set([
  "listen_addr",
  "listen_port",
  "listen_backlog",
  "unix_socket_dir",
  "unix_socket_mode",
  "unix_socket_group",
  "user",
  "pidfile",
  "logfile",
  "so_reuseport",
  "admin_listen_addr",
  "admin_listen_port",
  "workers",
]);

const SECRET_KEY = /password|token|secret|ldap_options/i;

/** A value as PgBouncer prints it in SHOW CONFIG. */
function configText(key: string, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "boolean") return value ? "1" : "0";
  if (Array.isArray(value)) return value.join(",");
  if (key === "unix_socket_mode" && typeof value === "number") return `0${value.toString(8)}`;
  return String(value);
}

let generalDefaults: Record<string, unknown> | undefined;

function configRows(settings: PoolerSettings, config: PgmuxConfig | null): ConsoleCell[][] {
  if (config !== null) {
    generalDefaults ??= PgmuxConfigSchema.shape.pgmux.parse({}) as Record<string, unknown>;
    const general = redactConfig(config).pgmux as Record<string, unknown>;
    return Object.keys(general)
      .sort()
      .map((key) => [
        key,
        SECRET_KEY.test(key) && general[key] !== undefined ? "********" : configText(key, general[key]),
        SECRET_KEY.test(key) ? "" : configText(key, generalDefaults?.[key]),
        NOT_CHANGEABLE.has(key) ? "no" : "yes",
      ]);
  }
  return settingsConfigRows(settings);
}

/** SHOW CONFIG from the engine's settings, when pgmux was not given its configuration model. */
function settingsConfigRows(s: PoolerSettings): ConsoleCell[][] {
  const seconds = (ms: number): number => ms / 1000;
  const view = (x: PoolerSettings): Record<string, unknown> => {
    const users = x as PoolerSettings & { adminUsers?: ReadonlySet<string>; statsUsers?: ReadonlySet<string> };
    return {
      listen_addr: x.listenAddrs,
      listen_port: x.listenPort,
      unix_socket_dir: x.unixSocketDir,
      unix_socket_mode: x.unixSocketMode,
      auth_type: x.authType,
      pool_mode: x.poolMode,
      max_client_conn: x.maxClientConn,
      default_pool_size: x.defaultPoolSize,
      min_pool_size: x.minPoolSize,
      reserve_pool_size: x.reservePoolSize,
      reserve_pool_timeout: seconds(x.reservePoolTimeoutMs),
      max_db_connections: x.maxDbConnections,
      max_user_connections: x.maxUserConnections,
      server_reset_query: x.serverResetQuery,
      server_reset_query_always: x.serverResetQueryAlways,
      server_check_query: x.serverCheckQuery ?? "",
      server_check_delay: seconds(x.serverCheckDelayMs),
      server_connect_timeout: seconds(x.serverConnectTimeoutMs),
      server_login_retry: seconds(x.serverLoginRetryMs),
      server_lifetime: seconds(x.serverLifetimeMs),
      server_idle_timeout: seconds(x.serverIdleTimeoutMs),
      query_timeout: seconds(x.queryTimeoutMs),
      query_wait_timeout: seconds(x.queryWaitTimeoutMs),
      client_idle_timeout: seconds(x.clientIdleTimeoutMs),
      client_login_timeout: seconds(x.clientLoginTimeoutMs),
      idle_transaction_timeout: seconds(x.idleTransactionTimeoutMs),
      ignore_startup_parameters: [...x.ignoreStartupParameters],
      max_packet_size: x.maxPacketSize,
      admin_users: [...(users.adminUsers ?? [])],
      stats_users: [...(users.statsUsers ?? [])],
    };
  };
  const current = view(s);
  const defaults = view(DEFAULT_SETTINGS);
  return Object.keys(current)
    .sort()
    .map((key) => [
      key,
      configText(key, current[key]),
      configText(key, defaults[key]),
      NOT_CHANGEABLE.has(key) ? "no" : "yes",
    ]);
}

// ---- the console session ------------------------------------------------------------------------------

export function isAdminConsoleDatabase(database: string): boolean {
  return (RESERVED_DATABASE_NAMES as readonly string[]).includes(database);
}

export type ConsoleRole = "admin" | "stats";

/** admin_users and stats_users, once the engine's settings carry them. */
export function consoleRole(settings: PoolerSettings, user: string): ConsoleRole | null {
  const s = settings as PoolerSettings & { adminUsers?: ReadonlySet<string>; statsUsers?: ReadonlySet<string> };
  if (s.adminUsers?.has(user) === true) return "admin";
  if (s.statsUsers?.has(user) === true) return "stats";
  return null;
}

/** An ErrorResponse of the console's own. */
export function consoleError(severity: "ERROR" | "FATAL", sqlState: string, message: string, hint?: string): Buffer {
  return encodeErrorResponse({
    fields: errorFields({ severity, code: sqlState, message, ...(hint !== undefined ? { hint } : {}) }),
  });
}

const READY = readyForQueryBytes(TransactionStatus.Idle);
const Q = FrontendMessageType;
/** Messages of the extended query protocol (and a stray COPY message): refused, once per batch. */
const EXTENDED = new Set<number>([
  Q.Parse,
  Q.Bind,
  Q.Describe,
  Q.Execute,
  Q.Close,
  Q.CopyData,
  Q.CopyDone,
  Q.CopyFail,
  Q.FunctionCall,
]);

/** A reply: the messages to send, then ReadyForQuery. */
type Reply = Buffer[];

interface Command {
  /** Changes something: refused to stats users. */
  readonly write: boolean;
  readonly run: (session: AdminConsole, arg: string) => Promise<Reply>;
}

/** The console's commands, dispatched by their first word. */
const COMMANDS: Readonly<Record<string, Command>> = {
  show: { write: false, run: (s, arg) => s.show(arg) },
  pause: { write: true, run: (s, arg) => s.action("PAUSE", arg, (c) => c.pause()) },
  resume: { write: true, run: (s, arg) => s.action("RESUME", arg, (c) => c.resume()) },
  reconnect: { write: true, run: (s, arg) => s.action("RECONNECT", arg, (c) => c.reconnect()) },
  reload: { write: true, run: (s, arg) => s.action("RELOAD", arg, (c) => c.reload()) },
  kill_client: { write: true, run: (s, arg) => s.killClient(arg) },
  shutdown: { write: true, run: (s, arg) => s.shutdown(arg) },
};

const HELP = [
  "SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
  "SHOW LISTS|STATE|PINS",
  "SHOW STATS|STATS_TOTALS|STATS_AVERAGES",
  "PAUSE",
  "RESUME",
  "RECONNECT",
  "RELOAD",
  "KILL_CLIENT <client_id>",
  "SHUTDOWN",
  "SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
].join("\n\t");

/** `WORD [ARG] [;]`: PgBouncer's command shape; words are letters, digits and underscores. */
const COMMAND_SHAPE = /^\s*([A-Za-z0-9_]+)(?:\s+([A-Za-z0-9_]+|"(?:[^"]|"")+"))?\s*;?\s*$/;

/**
 * One admin console session: takes over a logged-in client's socket. The client session hands it every
 * chunk (`onData`); replies go out in order, one write per command.
 */
export class AdminConsole {
  private readonly reader: FrameReader;
  /** An extended-protocol message was refused: everything up to the next Sync is ignored. */
  private skippingToSync = false;
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    readonly client: ClientSession,
    readonly role: ConsoleRole,
  ) {
    this.reader = new FrameReader((type, buf, start, end) => this.onMessage(type, buf, start, end), {
      maxMessageBytes: Math.min(client.pooler.settings.maxPacketSize, 1024 * 1024),
    });
  }

  /**
   * Finishes the login of a client that asked for the console database: an admin or stats user gets the
   * console, anyone else a FATAL 28000 (and null).
   */
  static open(client: ClientSession): AdminConsole | null {
    const pooler = client.pooler;
    const role = consoleRole(pooler.settings, client.user);
    if (role === null) {
      client.socket.write(
        consoleError(
          "FATAL",
          "28000",
          `user "${client.user}" may not use the admin console`,
          "Add the user to admin_users (every command) or stats_users (SHOW only).",
        ),
      );
      client.close("not an admin console user", true);
      return null;
    }
    const session = new AdminConsole(client, role);
    const { pid, key } = pooler.registerCancelKey(client);
    client.cancelPid = pid;
    client.cancelKey = key;
    const params: [string, string][] = [
      ["server_version", `${PGBOUNCER_COMPAT_VERSION}/bouncer`],
      ["server_encoding", "UTF8"],
      ["client_encoding", "UTF8"],
      ["DateStyle", "ISO"],
      ["TimeZone", "UTC"],
      ["integer_datetimes", "on"],
      ["standard_conforming_strings", "on"],
      ["application_name", client.params.get("application_name") ?? ""],
    ];
    client.socket.write(
      Buffer.concat([
        PrebuiltBackendMessage.AuthenticationOk,
        ...params.map(([name, value]) => encodeParameterStatus({ name, value })),
        encodeBackendKeyData({ processId: pid, secretKey: key }),
        READY,
      ]),
    );
    client.state = ClientState.Idle;
    client.lastActivityAt = pooler.now();
    client.log.info({ role }, "admin console login");
    return session;
  }

  /** Bytes from the client. */
  onData(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.write([consoleError("FATAL", "08P01", `protocol violation: ${reason}`)]);
      this.client.close("protocol violation on the admin console", true);
    }
  }

  private onMessage(type: number, buf: Buffer, start: number, end: number): void {
    const client = this.client;
    client.lastActivityAt = client.pooler.now();
    if (type === Q.Query) {
      const msg = decodeFrontendMessage(type, buf, start, end);
      if (msg.type !== "Query") return;
      const text = msg.query;
      this.enqueue(() => this.execute(text));
      return;
    }
    if (type === Q.Sync) {
      this.skippingToSync = false;
      this.enqueue(async () => this.write([READY]));
      return;
    }
    if (type === Q.Flush) return;
    if (type === Q.Terminate) {
      this.reader.stop();
      client.close("client sent Terminate", true);
      return;
    }
    if (EXTENDED.has(type)) {
      if (!this.skippingToSync) {
        this.skippingToSync = true;
        this.enqueue(async () =>
          this.write([consoleError("ERROR", "08P01", "admin console supports simple query only")]),
        );
      }
      return;
    }
    throw new ProtocolError(`unexpected message type 0x${type.toString(16)} on the admin console`);
  }

  /** Resolves once every command received so far has been answered. */
  settled(): Promise<void> {
    return this.queue;
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((err: unknown) => {
      this.client.log.error({ err }, "admin console command failed");
      this.write([consoleError("ERROR", "XX000", "internal error in the admin console"), READY]);
    });
  }

  private write(parts: Buffer[]): void {
    if (this.client.state === ClientState.Closed) return;
    this.client.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  private async execute(query: string): Promise<void> {
    const trimmed = query.trim();
    if (trimmed === "" || trimmed === ";") {
      this.write([encodeEmptyQueryResponse(), READY]);
      return;
    }
    const m = COMMAND_SHAPE.exec(trimmed);
    const command = m === null ? undefined : COMMANDS[m[1]!.toLowerCase()];
    if (m === null || command === undefined) {
      this.write([syntaxError(trimmed), READY]);
      return;
    }
    if (command.write && this.role !== "admin") {
      this.write([
        consoleError(
          "ERROR",
          "42501",
          `admin access needed: "${this.client.user}" is a stats user and may only run SHOW commands`,
        ),
        READY,
      ]);
      return;
    }
    const rawArg = m[2] ?? "";
    const arg = rawArg.startsWith('"') ? rawArg.slice(1, -1).replace(/""/g, '"') : rawArg;
    if (command.write) this.client.log.info({ command: trimmed }, "admin console command");
    const reply = await command.run(this, arg);
    this.write([...reply, READY]);
  }

  /** @internal SHOW <view>. */
  async show(arg: string): Promise<Reply> {
    const view = arg.toLowerCase();
    if (view === "help") {
      return [
        encodeNoticeResponse({
          fields: new Map([
            ["S", "NOTICE"],
            ["V", "NOTICE"],
            ["C", "00000"],
            ["M", "Console usage"],
            ["D", `\n\t${HELP}`],
          ]),
        }),
        encodeCommandComplete({ tag: "SHOW" }),
      ];
    }
    if (!isShowView(view)) return [syntaxError(`SHOW ${arg}`.trim())];
    return renderResult(pgbouncerView(this.client.pooler, view), "SHOW");
  }

  /** @internal PAUSE, RESUME, RECONNECT, RELOAD: for every pool at once. */
  async action(tag: string, arg: string, run: (control: PoolerControl) => Promise<void>): Promise<Reply> {
    if (arg !== "") {
      return [
        consoleError("ERROR", "0A000", `${tag} ${arg}: pgmux applies ${tag} to every pool; run it without a database`),
      ];
    }
    return this.control(tag, () => run(adminControl(this.client.pooler)));
  }

  /** @internal KILL_CLIENT <id>, the id being SHOW CLIENTS' ptr (and the HTTP API's client id). */
  async killClient(arg: string): Promise<Reply> {
    if (!/^\d+$/.test(arg)) {
      return [consoleError("ERROR", "22023", "KILL_CLIENT needs a client id: the ptr column of SHOW CLIENTS")];
    }
    const id = Number(arg);
    let found = true;
    const reply = await this.control("KILL_CLIENT", async () => {
      found = await adminControl(this.client.pooler).killClient(id);
    });
    return found ? reply : [consoleError("ERROR", "42704", `client ${id} not found`)];
  }

  /** @internal SHUTDOWN [WAIT_FOR_SERVERS | WAIT_FOR_CLIENTS]: answered before pgmux starts going down. */
  async shutdown(arg: string): Promise<Reply> {
    const upper = arg.toUpperCase();
    if (upper !== "" && upper !== "WAIT_FOR_SERVERS" && upper !== "WAIT_FOR_CLIENTS")
      return [syntaxError(`SHUTDOWN ${arg}`)];
    const mode: ShutdownMode = upper === "" ? "immediate" : "graceful";
    const control = adminControl(this.client.pooler);
    const log = this.client.log;
    setImmediate(() => {
      control.shutdown(mode).catch((err: unknown) => log.error({ err }, "shutdown from the admin console failed"));
    });
    return [encodeCommandComplete({ tag: "SHUTDOWN" })];
  }

  private async control(tag: string, run: () => Promise<void>): Promise<Reply> {
    try {
      await run();
      return [encodeCommandComplete({ tag })];
    } catch (err) {
      if (err instanceof ControlUnavailableError) return [consoleError("ERROR", "0A000", err.message)];
      if (err instanceof ControlStateError) return [consoleError("ERROR", "55000", err.message)];
      throw err;
    }
  }
}

function syntaxError(command: string): Buffer {
  const shown = command.length > 200 ? `${command.slice(0, 200)}…` : command;
  return consoleError("ERROR", "42601", `invalid command '${shown}', use SHOW HELP;`);
}

/** RowDescription, a DataRow per row, CommandComplete. */
export function renderResult(result: ConsoleResult, tag: string): Buffer[] {
  const out: Buffer[] = [
    encodeRowDescription({
      fields: result.columns.map((c) => ({
        name: c.name,
        tableOid: 0,
        columnNumber: 0,
        typeOid: c.type,
        typeSize: c.type === PgType.int4 ? 4 : c.type === PgType.int8 ? 8 : -1,
        typeModifier: -1,
        format: 0,
      })),
    }),
  ];
  for (const row of result.rows) {
    out.push(
      encodeDataRow({
        values: row.map((cell, i) => {
          if (cell === null) return null;
          if (typeof cell === "number") {
            const type = result.columns[i]?.type;
            return Buffer.from(type === PgType.text ? String(cell) : Math.round(cell).toString());
          }
          return Buffer.from(cell);
        }),
      }),
    );
  }
  out.push(encodeCommandComplete({ tag }));
  return out;
}
