/**
 * The settings the engine runs on: resolved from the configuration model (see config/), with durations in
 * milliseconds (0 = disabled, as in PgBouncer) and the [databases]/[users] entries as maps. Kept apart from
 * the file formats so the engine never parses anything and a reload can swap one object for another.
 */
import type { PoolMode, SessionStatePolicy } from "./config/config-schema.js";

export type { PoolMode, SessionStatePolicy };
export type ClientAuthType = "trust" | "any" | "plain" | "md5" | "scram-sha-256";

export interface DatabaseSettings {
  /** The name clients ask for. */
  readonly name: string;
  /** Host name, IP, or a directory holding the Unix socket (starts with "/"). */
  readonly host: string;
  readonly port: number;
  /** Database name on the server (defaults to `name`). */
  readonly dbname: string;
  /** Log in to the server as this user instead of the client's. */
  readonly user?: string;
  readonly password?: string;
  readonly poolSize?: number;
  readonly minPoolSize?: number;
  readonly reservePoolSize?: number;
  readonly poolMode?: PoolMode;
  readonly sessionState?: SessionStatePolicy;
  readonly maxDbConnections?: number;
  readonly connectQuery?: string;
  /** Startup parameters sent to the server (client_encoding, datestyle, timezone, application_name). */
  readonly serverStartupParameters: ReadonlyMap<string, string>;
}

export interface UserSettings {
  readonly poolMode?: PoolMode;
  readonly maxUserConnections?: number;
  readonly poolSize?: number;
}

export interface PoolerSettings {
  readonly listenAddrs: readonly string[];
  readonly listenPort: number;
  /** Directory for `.s.PGSQL.<port>`, or "" for no Unix socket. */
  readonly unixSocketDir: string;
  readonly unixSocketMode: number;
  readonly authType: ClientAuthType;
  /** User name → secret (plain, `md5…`, or `SCRAM-SHA-256$…`), from the auth_file. */
  readonly users: ReadonlyMap<string, string>;
  readonly poolMode: PoolMode;
  readonly maxClientConn: number;
  readonly defaultPoolSize: number;
  readonly minPoolSize: number;
  readonly reservePoolSize: number;
  readonly reservePoolTimeoutMs: number;
  readonly maxDbConnections: number;
  readonly maxUserConnections: number;
  readonly serverResetQuery: string;
  readonly serverResetQueryAlways: boolean;
  /** Run on a server idle longer than serverCheckDelayMs before it is lent; null disables the check. */
  readonly serverCheckQuery: string | null;
  readonly serverCheckDelayMs: number;
  readonly serverConnectTimeoutMs: number;
  readonly serverLoginRetryMs: number;
  readonly serverLifetimeMs: number;
  readonly serverIdleTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly queryWaitTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly clientLoginTimeoutMs: number;
  readonly idleTransactionTimeoutMs: number;
  /** Startup parameters dropped without complaint (names lower-cased). */
  readonly ignoreStartupParameters: ReadonlySet<string>;
  /** Largest message accepted from either side. */
  readonly maxPacketSize: number;
  /**
   * Protocol-level prepared statements each server may hold for transaction and statement pools, where
   * pgmux renames clients' statements and prepares them on whichever server a client gets; 0 turns that
   * off (named statements then pass through untouched, as in PgBouncer before 1.21).
   */
  readonly maxPreparedStatements: number;
  /** session_state: what transaction and statement pools do about state a client ties to its server. */
  readonly sessionState: SessionStatePolicy;
  readonly databases: ReadonlyMap<string, DatabaseSettings>;
  /** The "*" entry: any other database name, connected to with these settings. */
  readonly fallbackDatabase: DatabaseSettings | null;
  readonly userSettings: ReadonlyMap<string, UserSettings>;
  /** admin_users: may run every admin console command (database pgbouncer or pgmux). */
  readonly adminUsers: ReadonlySet<string>;
  /** stats_users: may run the admin console's SHOW commands only. */
  readonly statsUsers: ReadonlySet<string>;
  /** log_connections: each login logged at info (else debug); default on, as in PgBouncer. */
  readonly logConnections?: boolean;
  /** log_disconnections: each disconnect of a logged-in client logged at info with its reason (else debug). */
  readonly logDisconnections?: boolean;
}

/** PgBouncer's defaults where the engine needs a value; the config loaders start from the same figures. */
export const DEFAULT_SETTINGS: PoolerSettings = {
  listenAddrs: ["127.0.0.1"],
  listenPort: 6432,
  unixSocketDir: "",
  unixSocketMode: 0o777,
  authType: "md5",
  users: new Map(),
  poolMode: "session",
  maxClientConn: 100,
  defaultPoolSize: 20,
  minPoolSize: 0,
  reservePoolSize: 0,
  reservePoolTimeoutMs: 5000,
  maxDbConnections: 0,
  maxUserConnections: 0,
  serverResetQuery: "DISCARD ALL",
  serverResetQueryAlways: false,
  serverCheckQuery: "select 1",
  serverCheckDelayMs: 30_000,
  serverConnectTimeoutMs: 15_000,
  serverLoginRetryMs: 15_000,
  serverLifetimeMs: 3_600_000,
  serverIdleTimeoutMs: 600_000,
  queryTimeoutMs: 0,
  queryWaitTimeoutMs: 120_000,
  clientIdleTimeoutMs: 0,
  clientLoginTimeoutMs: 60_000,
  idleTransactionTimeoutMs: 0,
  ignoreStartupParameters: new Set(),
  maxPacketSize: 2_147_483_647,
  maxPreparedStatements: 200,
  sessionState: "pin",
  databases: new Map(),
  fallbackDatabase: null,
  userSettings: new Map(),
  adminUsers: new Set(),
  statsUsers: new Set(),
};
