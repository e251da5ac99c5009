import { existsSync } from "node:fs";
import type { DatabaseConfig, PgmuxConfig } from "./config/index.js";
import type { DatabaseSettings, PoolerSettings, UserSettings } from "./pooler-settings.js";

/** Where a [databases] entry without host= finds PostgreSQL's socket: Debian's directory, else upstream's. */
const DEFAULT_SERVER_SOCKET_DIR = existsSync("/var/run/postgresql") ? "/var/run/postgresql" : "/tmp";

const ms = (seconds: number): number => Math.round(seconds * 1000);

/** The engine's settings from a validated configuration (seconds become milliseconds here, and only here). */
export function settingsFromConfig(config: PgmuxConfig): PoolerSettings {
  const g = config.pgmux;
  const databases = new Map<string, DatabaseSettings>();
  let fallbackDatabase: DatabaseSettings | null = null;
  for (const [name, db] of Object.entries(config.databases)) {
    const settings = databaseSettings(name, db);
    if (name === "*") fallbackDatabase = settings;
    else databases.set(name, settings);
  }
  const userSettings = new Map<string, UserSettings>();
  for (const [name, u] of Object.entries(config.users)) {
    userSettings.set(name, {
      ...(u.pool_mode !== undefined ? { poolMode: u.pool_mode } : {}),
      ...(u.max_user_connections !== undefined ? { maxUserConnections: u.max_user_connections } : {}),
      ...(u.pool_size !== undefined ? { poolSize: u.pool_size } : {}),
    });
  }
  const authType = g.auth_type;
  if (
    authType !== "trust" &&
    authType !== "any" &&
    authType !== "plain" &&
    authType !== "md5" &&
    authType !== "scram-sha-256"
  ) {
    throw new Error(`auth_type ${authType} is not supported yet (use trust, any, plain, md5 or scram-sha-256)`);
  }
  return {
    listenAddrs: g.listen_addr,
    listenPort: g.listen_port,
    unixSocketDir: g.unix_socket_dir,
    unixSocketMode: g.unix_socket_mode,
    authType,
    users: new Map(Object.entries(config.auth)),
    poolMode: g.pool_mode,
    maxClientConn: g.max_client_conn,
    defaultPoolSize: g.default_pool_size,
    minPoolSize: g.min_pool_size,
    reservePoolSize: g.reserve_pool_size,
    reservePoolTimeoutMs: ms(g.reserve_pool_timeout),
    maxDbConnections: g.max_db_connections,
    maxUserConnections: g.max_user_connections,
    serverResetQuery: g.server_reset_query,
    serverResetQueryAlways: g.server_reset_query_always,
    // PgBouncer's convention: "" turns the check off, "<empty>" sends an empty query.
    serverCheckQuery:
      g.server_check_query === "" ? null : g.server_check_query === "<empty>" ? "" : g.server_check_query,
    serverCheckDelayMs: ms(g.server_check_delay),
    serverConnectTimeoutMs: ms(g.server_connect_timeout),
    serverLoginRetryMs: ms(g.server_login_retry),
    serverLifetimeMs: ms(g.server_lifetime),
    serverIdleTimeoutMs: ms(g.server_idle_timeout),
    queryTimeoutMs: ms(g.query_timeout),
    queryWaitTimeoutMs: ms(g.query_wait_timeout),
    clientIdleTimeoutMs: ms(g.client_idle_timeout),
    clientLoginTimeoutMs: ms(g.client_login_timeout),
    idleTransactionTimeoutMs: ms(g.idle_transaction_timeout),
    ignoreStartupParameters: new Set(g.ignore_startup_parameters.map((p) => p.toLowerCase())),
    maxPacketSize: g.max_packet_size,
    maxPreparedStatements: g.max_prepared_statements,
    sessionState: g.session_state,
    databases,
    fallbackDatabase,
    userSettings,
    adminUsers: new Set(g.admin_users),
    statsUsers: new Set(g.stats_users),
    logConnections: g.log_connections,
    logDisconnections: g.log_disconnections,
  };
}

function databaseSettings(name: string, db: DatabaseConfig): DatabaseSettings {
  const startup = new Map<string, string>();
  if (db.client_encoding !== undefined) startup.set("client_encoding", db.client_encoding);
  if (db.datestyle !== undefined) startup.set("datestyle", db.datestyle);
  if (db.timezone !== undefined) startup.set("timezone", db.timezone);
  if (db.application_name !== undefined) startup.set("application_name", db.application_name);
  // Several hosts (failover lists) are not supported yet: the first one is used.
  const host = (db.host ?? DEFAULT_SERVER_SOCKET_DIR).split(",")[0]!.trim();
  return {
    name,
    host,
    port: db.port,
    dbname: db.dbname ?? name,
    serverStartupParameters: startup,
    ...(db.user !== undefined ? { user: db.user } : {}),
    ...(db.password !== undefined ? { password: db.password } : {}),
    ...(db.pool_size !== undefined ? { poolSize: db.pool_size } : {}),
    ...(db.min_pool_size !== undefined ? { minPoolSize: db.min_pool_size } : {}),
    ...(db.reserve_pool_size !== undefined ? { reservePoolSize: db.reserve_pool_size } : {}),
    ...(db.pool_mode !== undefined ? { poolMode: db.pool_mode } : {}),
    ...(db.session_state !== undefined ? { sessionState: db.session_state } : {}),
    ...(db.max_db_connections !== undefined ? { maxDbConnections: db.max_db_connections } : {}),
    ...(db.connect_query !== undefined ? { connectQuery: db.connect_query } : {}),
  };
}
