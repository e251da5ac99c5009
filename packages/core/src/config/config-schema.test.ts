import { describe, expect, test } from "vitest";
import { KNOWN_KEYS, PgmuxConfigSchema } from "./config-schema.js";
import { UNIMPLEMENTED_KEYS } from "./unimplemented-keys.js";

/**
 * The keys PgBouncer's configuration reference (1.25 and the current development docs) describes, typed
 * from the documentation rather than from our schema so that a key dropped from the schema fails here.
 */
const PGBOUNCER_GENERAL_KEYS = [
  "logfile",
  "pidfile",
  "listen_addr",
  "listen_port",
  "unix_socket_dir",
  "unix_socket_mode",
  "unix_socket_group",
  "user",
  "pool_mode",
  "max_client_conn",
  "default_pool_size",
  "min_pool_size",
  "reserve_pool_size",
  "reserve_pool_timeout",
  "max_db_connections",
  "max_db_client_connections",
  "max_user_connections",
  "max_user_client_connections",
  "server_round_robin",
  "track_extra_parameters",
  "ignore_startup_parameters",
  "peer_id",
  "disable_pqexec",
  "application_name_add_host",
  "conffile",
  "service_name",
  "job_name",
  "stats_period",
  "max_prepared_statements",
  "scram_iterations",
  "auth_type",
  "auth_hba_file",
  "auth_ident_file",
  "auth_file",
  "auth_user",
  "auth_query",
  "auth_dbname",
  "auth_ldap_options",
  "syslog",
  "syslog_ident",
  "syslog_facility",
  "log_connections",
  "log_disconnections",
  "log_pooler_errors",
  "log_stats",
  "verbose",
  "admin_users",
  "stats_users",
  "server_reset_query",
  "server_reset_query_always",
  "server_check_delay",
  "server_check_query",
  "server_fast_close",
  "server_lifetime",
  "server_idle_timeout",
  "server_connect_timeout",
  "server_login_retry",
  "client_login_timeout",
  "autodb_idle_timeout",
  "pool_idle_timeout",
  "dns_max_ttl",
  "dns_nxdomain_ttl",
  "dns_zone_check_period",
  "resolv_conf",
  "query_wait_notify",
  "login_notify_message",
  "client_tls_sslmode",
  "client_tls_key_file",
  "client_tls_cert_file",
  "client_tls_ca_file",
  "client_tls_protocols",
  "client_tls_ciphers",
  "client_tls13_ciphers",
  "client_tls_ecdhcurve",
  "client_tls_dheparams",
  "server_tls_sslmode",
  "server_tls_ca_file",
  "server_tls_key_file",
  "server_tls_cert_file",
  "server_tls_protocols",
  "server_tls_ciphers",
  "server_tls13_ciphers",
  "query_timeout",
  "query_wait_timeout",
  "cancel_wait_timeout",
  "client_idle_timeout",
  "idle_transaction_timeout",
  "transaction_timeout",
  "suspend_timeout",
  "pkt_buf",
  "max_packet_size",
  "listen_backlog",
  "sbuf_loopcnt",
  "so_reuseport",
  "tcp_defer_accept",
  "tcp_socket_buffer",
  "tcp_keepalive",
  "tcp_keepcnt",
  "tcp_keepidle",
  "tcp_keepintvl",
  "tcp_user_timeout",
];

const PGBOUNCER_DATABASE_KEYS = [
  "dbname",
  "host",
  "port",
  "user",
  "password",
  "auth_user",
  "auth_query",
  "auth_dbname",
  "pool_size",
  "min_pool_size",
  "reserve_pool_size",
  "reserve_pool",
  "connect_query",
  "pool_mode",
  "query_wait_timeout",
  "load_balance_hosts",
  "target_session_attrs",
  "max_db_connections",
  "max_db_client_connections",
  "server_lifetime",
  "client_encoding",
  "datestyle",
  "timezone",
  "application_name",
];

const PGBOUNCER_USER_KEYS = [
  "pool_size",
  "reserve_pool_size",
  "pool_mode",
  "max_user_connections",
  "query_timeout",
  "query_wait_timeout",
  "idle_transaction_timeout",
  "transaction_timeout",
  "client_idle_timeout",
  "max_user_client_connections",
];

const PGBOUNCER_PEER_KEYS = ["host", "port", "pool_size"];

/** What the first version of pgmux promises to act on. */
const IMPLEMENTED_GENERAL_KEYS = [
  "listen_addr",
  "listen_port",
  "unix_socket_dir",
  "unix_socket_mode",
  "auth_type",
  "auth_file",
  "pool_mode",
  "max_client_conn",
  "default_pool_size",
  "min_pool_size",
  "reserve_pool_size",
  "reserve_pool_timeout",
  "max_db_connections",
  "max_user_connections",
  "server_reset_query",
  "server_reset_query_always",
  "server_check_query",
  "server_check_delay",
  "server_connect_timeout",
  "server_login_retry",
  "server_lifetime",
  "server_idle_timeout",
  "query_timeout",
  "query_wait_timeout",
  "client_idle_timeout",
  "client_login_timeout",
  "idle_transaction_timeout",
  "ignore_startup_parameters",
  "max_packet_size",
  "max_prepared_statements",
  "session_state",
  "admin_users",
  "stats_users",
  "admin_listen_addr",
  "admin_listen_port",
  "admin_api_token",
  "pgbouncer_exporter_compat",
  "workers",
  "shutdown_delay",
  "shutdown_timeout",
  "watch_config",
  "log_format",
  "log_level",
  "log_connections",
  "log_disconnections",
];

describe("the configuration schema", () => {
  test("recognises every [pgbouncer] key PgBouncer documents", () => {
    expect(PGBOUNCER_GENERAL_KEYS.filter((k) => !KNOWN_KEYS.pgmux.includes(k))).toEqual([]);
  });

  test("recognises every [databases], [users] and [peers] key PgBouncer documents", () => {
    expect(PGBOUNCER_DATABASE_KEYS.filter((k) => !KNOWN_KEYS.databases.includes(k))).toEqual([]);
    expect(PGBOUNCER_USER_KEYS.filter((k) => !KNOWN_KEYS.users.includes(k))).toEqual([]);
    expect(PGBOUNCER_PEER_KEYS.filter((k) => !KNOWN_KEYS.peers.includes(k))).toEqual([]);
  });

  test("lists only recognised keys as unimplemented, so a typo there cannot hide a warning", () => {
    expect(UNIMPLEMENTED_KEYS.pgmux.filter((k) => !(KNOWN_KEYS.pgmux as readonly string[]).includes(k))).toEqual([]);
    expect(UNIMPLEMENTED_KEYS.databases.filter((k) => !KNOWN_KEYS.databases.includes(k))).toEqual([]);
    expect(UNIMPLEMENTED_KEYS.users.filter((k) => !KNOWN_KEYS.users.includes(k))).toEqual([]);
  });

  test("does not warn about the settings the first version implements", () => {
    const unimplemented: readonly string[] = UNIMPLEMENTED_KEYS.pgmux;
    expect(IMPLEMENTED_GENERAL_KEYS.filter((k) => unimplemented.includes(k))).toEqual([]);
    const everyKey = Object.keys(PgmuxConfigSchema.shape.pgmux.shape);
    expect(everyKey.filter((k) => !unimplemented.includes(k)).sort()).toEqual([...IMPLEMENTED_GENERAL_KEYS].sort());
  });

  test("an empty configuration gets PgBouncer's defaults, durations in seconds", () => {
    const config = PgmuxConfigSchema.parse({ pgmux: {}, databases: {}, users: {}, peers: {}, auth: {} });
    expect(config.pgmux).toMatchObject({
      listen_addr: [],
      listen_port: 6432,
      auth_type: "md5",
      pool_mode: "session",
      reserve_pool_timeout: 5,
      query_wait_timeout: 120,
      server_lifetime: 3600,
      track_extra_parameters: ["IntervalStyle"],
      tcp_user_timeout: 0,
    });
  });
});
