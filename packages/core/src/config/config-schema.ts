/**
 * pgmux's configuration model: one shape that both a PgBouncer `pgbouncer.ini` (with its userlist) and a
 * native `pgmux.yaml` are loaded into.
 *
 * Key names are PgBouncer's wherever the meaning is the same, so that an existing file, its documentation
 * and its operators' habits carry over unchanged.
 *
 * DURATIONS ARE SECONDS. Every time value in this model is a number of seconds, fractions allowed
 * (`reserve_pool_timeout: 2.5`), exactly as PgBouncer's ini takes them; the field keeps PgBouncer's name
 * (`query_wait_timeout`, not `query_wait_timeout_ms`) because the YAML form uses the same names. Convert at
 * the point of use (`seconds * 1000`) and name the result with its unit (`queryWaitTimeoutMs`). The one
 * exception is `tcp_user_timeout`, which PgBouncer itself defines in milliseconds; it stays milliseconds.
 * 0 means "off" where PgBouncer says so.
 *
 * Inputs may be text (everything in an ini file is) or typed YAML values: each field's preprocessing turns
 * "15", "on", "a, b" and "0777" into what the field holds, so the ini and YAML loaders share this schema.
 * Every error message here says what is wrong and, in parentheses, what to do; none repeats a value that
 * could be a secret.
 */
import { z } from "zod";

export const POOL_MODES = ["session", "transaction", "statement"] as const;
/**
 * What a transaction or statement pool does when a client creates session state that cannot follow it to
 * another server (LISTEN, session advisory locks, temporary tables, cursors WITH HOLD, SQL PREPARE, LOAD):
 * keep its server for it until the state is undone ("pin"), refuse the statement ("error"), or do nothing
 * as PgBouncer does ("allow").
 */
export const SESSION_STATE_POLICIES = ["pin", "error", "allow"] as const;
export type SessionStatePolicy = (typeof SESSION_STATE_POLICIES)[number];
export type PoolMode = (typeof POOL_MODES)[number];

export const AUTH_TYPES = ["trust", "plain", "md5", "scram-sha-256", "cert", "hba", "pam", "ldap", "any"] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export const LOAD_BALANCE_HOSTS = ["round-robin", "disable"] as const;
export const LOG_FORMATS = ["json", "text"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const TARGET_SESSION_ATTRS = ["any", "read-write", "read-only", "primary", "standby"] as const;

/** PgBouncer's default auth_query (used only when auth_user is set). */
export const DEFAULT_AUTH_QUERY =
  "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin";

/** Names that clients use to reach the admin console, so no [databases] entry may take them. */
export const RESERVED_DATABASE_NAMES = ["pgbouncer", "pgmux"] as const;

// ---------------------------------------------------------------------------------------------------------
// Field builders. Each one accepts ini text or a typed YAML value.

/** A short, quoted rendering of a rejected (never secret) value, for messages. */
function shown(input: unknown): string {
  if (input === undefined) return "nothing";
  let text: string;
  try {
    text = JSON.stringify(input) ?? String(input);
  } catch {
    text = typeof input;
  }
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER_TEXT = /^[+-]?\d+$/;

function numberFromText(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const t = v.trim();
  return NUMBER_TEXT.test(t) ? Number(t) : v;
}

function integerFromText(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const t = v.trim();
  return INTEGER_TEXT.test(t) ? Number(t) : v;
}

/** C's strtol(…, 0) rules, which PgBouncer uses for unix_socket_mode: a leading 0 means octal. */
function modeFromText(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const t = v.trim();
  if (/^0[0-7]*$/.test(t)) return Number.parseInt(t, 8);
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return Number.parseInt(t.slice(2), 16);
  if (/^[1-9]\d*$/.test(t)) return Number.parseInt(t, 10);
  return v;
}

const TRUE_WORDS = new Set(["1", "true", "on", "yes"]);
const FALSE_WORDS = new Set(["0", "false", "off", "no"]);

/** PgBouncer's switches are integers where anything but 0 is on; words are accepted too. */
function booleanFromText(v: unknown): unknown {
  if (typeof v === "number" && Number.isInteger(v)) return v !== 0;
  if (typeof v !== "string") return v;
  const t = v.trim().toLowerCase();
  if (TRUE_WORDS.has(t)) return true;
  if (FALSE_WORDS.has(t)) return false;
  if (INTEGER_TEXT.test(t)) return Number(t) !== 0;
  return v;
}

function listFromText(v: unknown): unknown {
  if (typeof v !== "string") return v;
  return v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function lowerText(v: unknown): unknown {
  return typeof v === "string" ? v.trim().toLowerCase() : v;
}

/** An empty ini value (`logfile =`) means "not set", as in PgBouncer. */
function emptyAsUnset(v: unknown): unknown {
  return v === "" ? undefined : v;
}

const TEXT_ERROR = "must be text (in YAML, put it in quotes)";

function seconds() {
  return z.preprocess(
    numberFromText,
    z
      .number({ error: (iss) => `expected a number of seconds, got ${shown(iss.input)} (write e.g. 15 or 2.5)` })
      .min(0, { error: "must not be negative (write 0 or more seconds)" })
      .max(315_360_000, { error: "is longer than ten years (write a number of seconds)" }),
  );
}

function integer(min: number, max: number, example: number) {
  return z.preprocess(
    integerFromText,
    z
      .number({
        error: (iss) => `expected a whole number, got ${shown(iss.input)} (write digits only, e.g. ${example})`,
      })
      .int({ error: (iss) => `expected a whole number, got ${shown(iss.input)} (write digits only, e.g. ${example})` })
      .min(min, { error: `must be at least ${min} (raise it)` })
      .max(max, { error: `must be at most ${max} (lower it)` }),
  );
}

const MAX_INT32 = 2_147_483_647;

function count(example: number) {
  return integer(0, MAX_INT32, example);
}

function port() {
  return integer(1, 65_535, 5432);
}

function flag() {
  return z.preprocess(
    booleanFromText,
    z.boolean({ error: (iss) => `expected a switch, got ${shown(iss.input)} (write 1 or 0, or true or false)` }),
  );
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.preprocess(
    lowerText,
    z.enum(values, {
      error: (iss) => `${shown(iss.input)} is not a valid choice (write one of: ${values.join(", ")})`,
    }),
  );
}

function names() {
  return z.preprocess(
    listFromText,
    z.array(z.string({ error: TEXT_ERROR }), {
      error: "expected a comma-separated list of names (write e.g. alice, bob, or a YAML list)",
    }),
  );
}

function text() {
  return z.string({ error: TEXT_ERROR });
}

/** A string whose empty value means "not set". */
function optionalText() {
  return z.preprocess(emptyAsUnset, z.string({ error: TEXT_ERROR }).optional());
}

// ---------------------------------------------------------------------------------------------------------
// [pgbouncer] / pgmux: — general settings, with PgBouncer's defaults.

export const GeneralSettingsSchema = z.strictObject({
  // Where clients connect. listen_addr empty means Unix socket only, as in PgBouncer.
  listen_addr: names().default([]),
  listen_port: port().default(6432),
  listen_backlog: count(128).default(128),
  unix_socket_dir: text().default("/tmp"),
  unix_socket_mode: z
    .preprocess(
      modeFromText,
      z
        .number({ error: (iss) => `expected a file mode, got ${shown(iss.input)} (write it in octal, e.g. 0777)` })
        .int({ error: "expected a whole file mode (write it in octal, e.g. 0777)" })
        .min(0, { error: "must not be negative (write it in octal, e.g. 0777)" })
        .max(0o7777, { error: "is not a file mode (write it in octal, e.g. 0777)" }),
    )
    .default(0o777),
  unix_socket_group: optionalText(),
  user: optionalText(),
  logfile: optionalText(),
  pidfile: optionalText(),
  conffile: optionalText(),
  job_name: text().default("pgbouncer"),

  // Authentication of clients.
  auth_type: oneOf(AUTH_TYPES).default("md5"),
  /** Absolute after loading: a relative path is resolved against the directory of the file that set it. */
  auth_file: optionalText(),
  auth_hba_file: optionalText(),
  auth_ident_file: optionalText(),
  /** May hold an LDAP bind password, so it is treated as a secret. */
  auth_ldap_options: optionalText(),
  auth_user: optionalText(),
  auth_query: text().default(DEFAULT_AUTH_QUERY),
  auth_dbname: optionalText(),
  scram_iterations: integer(1, MAX_INT32, 4096).default(4096),

  // Pool sizing and modes.
  pool_mode: oneOf(POOL_MODES).default("session"),
  max_client_conn: integer(1, MAX_INT32, 100).default(100),
  default_pool_size: count(20).default(20),
  min_pool_size: count(0).default(0),
  reserve_pool_size: count(0).default(0),
  reserve_pool_timeout: seconds().default(5),
  max_db_connections: count(0).default(0),
  max_db_client_connections: count(0).default(0),
  max_user_connections: count(0).default(0),
  max_user_client_connections: count(0).default(0),
  server_round_robin: flag().default(false),
  max_prepared_statements: count(200).default(200),
  session_state: oneOf(SESSION_STATE_POLICIES).default("pin"),
  track_extra_parameters: names().default(["IntervalStyle"]),
  ignore_startup_parameters: names().default([]),
  disable_pqexec: flag().default(false),
  application_name_add_host: flag().default(false),
  peer_id: integer(0, 16_383, 1).default(0),

  // Server connection checks and timeouts (seconds).
  server_reset_query: text().default("DISCARD ALL"),
  server_reset_query_always: flag().default(false),
  /** `<empty>` sends an empty query as the check, an empty string turns checking off (PgBouncer's convention). */
  server_check_query: text().default("<empty>"),
  server_check_delay: seconds().default(30),
  server_fast_close: flag().default(false),
  server_lifetime: seconds().default(3600),
  server_idle_timeout: seconds().default(600),
  server_connect_timeout: seconds().default(15),
  server_login_retry: seconds().default(15),
  client_login_timeout: seconds().default(60),
  autodb_idle_timeout: seconds().default(3600),
  pool_idle_timeout: seconds().default(0),
  dns_max_ttl: seconds().default(15),
  dns_nxdomain_ttl: seconds().default(15),
  dns_zone_check_period: seconds().default(0),
  resolv_conf: optionalText(),
  query_timeout: seconds().default(0),
  query_wait_timeout: seconds().default(120),
  /** Whole seconds, as PgBouncer takes it. */
  query_wait_notify: count(5).default(5),
  cancel_wait_timeout: seconds().default(10),
  client_idle_timeout: seconds().default(0),
  idle_transaction_timeout: seconds().default(0),
  transaction_timeout: seconds().default(0),
  suspend_timeout: seconds().default(10),
  login_notify_message: optionalText(),

  // Console access.
  admin_users: names().default([]),
  stats_users: names().default([]),

  // Logging.
  syslog: flag().default(false),
  syslog_ident: text().default("pgbouncer"),
  syslog_facility: text().default("daemon"),
  log_connections: flag().default(true),
  log_disconnections: flag().default(true),
  log_pooler_errors: flag().default(true),
  log_stats: flag().default(true),
  /** Whole seconds, as PgBouncer takes it. */
  stats_period: integer(1, MAX_INT32, 60).default(60),
  verbose: integer(0, 3, 1).default(0),

  // Low-level network settings.
  pkt_buf: integer(1, MAX_INT32, 4096).default(4096),
  max_packet_size: integer(1, MAX_INT32, MAX_INT32).default(MAX_INT32),
  sbuf_loopcnt: count(5).default(5),
  so_reuseport: flag().default(false),
  tcp_defer_accept: flag().default(true),
  tcp_socket_buffer: count(0).default(0),
  tcp_keepalive: flag().default(true),
  tcp_keepcnt: count(0).default(0),
  /** Whole seconds; 0 keeps the operating system's default. */
  tcp_keepidle: count(0).default(0),
  /** Whole seconds; 0 keeps the operating system's default. */
  tcp_keepintvl: count(0).default(0),
  /** MILLISECONDS, as PgBouncer defines it; 0 keeps the operating system's default. */
  tcp_user_timeout: count(0).default(0),

  // TLS.
  client_tls_sslmode: oneOf(SSL_MODES).default("disable"),
  client_tls_key_file: optionalText(),
  client_tls_cert_file: optionalText(),
  client_tls_ca_file: optionalText(),
  client_tls_protocols: text().default("secure"),
  client_tls_ciphers: text().default("default"),
  client_tls13_ciphers: optionalText(),
  client_tls_ecdhcurve: text().default("auto"),
  client_tls_dheparams: text().default("auto"),
  server_tls_sslmode: oneOf(SSL_MODES).default("prefer"),
  server_tls_ca_file: optionalText(),
  server_tls_key_file: optionalText(),
  server_tls_cert_file: optionalText(),
  server_tls_protocols: text().default("secure"),
  server_tls_ciphers: text().default("default"),
  server_tls13_ciphers: optionalText(),

  // pgmux's own settings (no PgBouncer counterpart).
  /** The HTTP admin API (/metrics, /healthz); loopback by default so it is not exposed by accident. */
  admin_listen_addr: text().default("127.0.0.1"),
  /** 0 picks a free port (the admin server logs the URL it bound). */
  admin_listen_port: integer(0, 65_535, 9127).default(9127),
  /** Secret. Enables the admin API's control actions, which then need `Authorization: Bearer <token>`. */
  admin_api_token: optionalText(),
  /** Also emit prometheus-community/pgbouncer_exporter's metric names and labels on /metrics. */
  pgbouncer_exporter_compat: flag().default(false),
  /**
   * Processes sharing the client port (SO_REUSEPORT); each runs its own pools, with the pool sizes and
   * connection limits divided among them (docs/operations.md, "Workers"). Read at start-up only.
   */
  workers: integer(1, 1024, 4).default(1),
  /**
   * After SIGTERM, how long pgmux keeps serving as before (while /readyz already fails) so that load
   * balancers and Kubernetes endpoints stop sending new clients, before it starts draining.
   */
  shutdown_delay: seconds().default(0),
  /**
   * How long a drain may last: clients still inside a transaction then have their query cancelled and
   * are closed. 0 waits for ever.
   */
  shutdown_timeout: seconds().default(25),
  /** Reload when the configuration file's directory changes (a Kubernetes ConfigMap update, an editor's save). */
  watch_config: flag().default(false),
  /** `json` (pino, one object a line) or `text` (PgBouncer-style lines for people). */
  log_format: oneOf(LOG_FORMATS).default("json"),
  /** The starting log level; it can be changed while pgmux runs (POST /v1/log-level, SIGUSR2). */
  log_level: oneOf(LOG_LEVELS).default("info"),
});

/** PgBouncer's alias names, rewritten to the name the model uses before validation. */
export const GENERAL_KEY_ALIASES: Readonly<Record<string, string>> = { service_name: "job_name" };

// ---------------------------------------------------------------------------------------------------------
// [databases] — each value is a connection string in the ini, a map (or that same string) in YAML.

export const DatabaseSchema = z.strictObject({
  /** Host name, IP address, Unix socket directory (`/…`), or a comma-separated list of them. */
  host: optionalText(),
  port: port().default(5432),
  /** Unset means the name the client asked for. */
  dbname: optionalText(),
  /** Set means every client of this database shares one pool logged in as this user. */
  user: optionalText(),
  /** Secret. */
  password: z.string({ error: TEXT_ERROR }).optional(),
  auth_user: optionalText(),
  auth_query: optionalText(),
  auth_dbname: optionalText(),
  pool_size: count(20).optional(),
  min_pool_size: count(0).optional(),
  reserve_pool_size: count(0).optional(),
  max_db_connections: count(0).optional(),
  max_db_client_connections: count(0).optional(),
  pool_mode: oneOf(POOL_MODES).optional(),
  session_state: oneOf(SESSION_STATE_POLICIES).optional(),
  connect_query: optionalText(),
  client_encoding: optionalText(),
  datestyle: optionalText(),
  timezone: optionalText(),
  application_name: optionalText(),
  server_lifetime: seconds().optional(),
  /** PgBouncer's -1 ("not set") arrives here as unset. */
  query_wait_timeout: z.preprocess(notSetAsUnset, seconds().optional()),
  load_balance_hosts: oneOf(LOAD_BALANCE_HOSTS).optional(),
  target_session_attrs: oneOf(TARGET_SESSION_ATTRS).optional(),
});

function notSetAsUnset(v: unknown): unknown {
  return v === -1 || (typeof v === "string" && v.trim() === "-1") ? undefined : v;
}

export const DATABASE_KEY_ALIASES: Readonly<Record<string, string>> = { reserve_pool: "reserve_pool_size" };

// ---------------------------------------------------------------------------------------------------------
// [users] — per-user overrides.

export const UserSchema = z.strictObject({
  pool_mode: oneOf(POOL_MODES).optional(),
  pool_size: count(20).optional(),
  reserve_pool_size: count(0).optional(),
  max_user_connections: count(0).optional(),
  max_user_client_connections: count(0).optional(),
  query_timeout: seconds().optional(),
  query_wait_timeout: z.preprocess(notSetAsUnset, seconds().optional()),
  idle_transaction_timeout: seconds().optional(),
  transaction_timeout: seconds().optional(),
  client_idle_timeout: seconds().optional(),
});

// ---------------------------------------------------------------------------------------------------------
// [peers] — other poolers that cancel requests may be forwarded to (PgBouncer's peering).

export const PeerSchema = z.strictObject({
  host: text(),
  port: port().default(6432),
  pool_size: count(20).optional(),
});

export const PgmuxConfigSchema = z.strictObject({
  pgmux: GeneralSettingsSchema,
  /** Keyed by the name clients connect to; `*` is the fallback used for any other name. */
  databases: z.record(z.string(), DatabaseSchema),
  users: z.record(z.string(), UserSchema),
  /** Keyed by peer id (1–16383). */
  peers: z.record(z.string(), PeerSchema),
  /**
   * The user list: user name → secret, exactly as written (plain text, `md5` + 32 hex digits, or
   * `SCRAM-SHA-256$…`). Secret: never log it.
   */
  auth: z.record(z.string(), z.string({ error: TEXT_ERROR })),
});

export type PgmuxConfig = z.output<typeof PgmuxConfigSchema>;
export type GeneralSettings = PgmuxConfig["pgmux"];
export type DatabaseConfig = z.output<typeof DatabaseSchema>;
export type UserConfig = z.output<typeof UserSchema>;
export type PeerConfig = z.output<typeof PeerSchema>;

/** The keys each section recognises, for unknown-key suggestions. */
export const KNOWN_KEYS = {
  pgmux: [...Object.keys(GeneralSettingsSchema.shape), ...Object.keys(GENERAL_KEY_ALIASES)],
  databases: [...Object.keys(DatabaseSchema.shape), ...Object.keys(DATABASE_KEY_ALIASES)],
  users: Object.keys(UserSchema.shape),
  peers: Object.keys(PeerSchema.shape),
} as const;
