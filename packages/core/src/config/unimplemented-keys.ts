/**
 * PgBouncer settings that pgmux recognises but does not act on yet. A file that sets one loads, with a
 * warning naming it, instead of failing (so an existing pgbouncer.ini works as a drop-in) or being silently
 * ignored (so nobody believes a setting protects them when it does not).
 *
 * When a feature lands, delete its keys here in the same change; the warning then disappears by itself.
 * A key missing from these lists is promised to work.
 */
export const UNIMPLEMENTED_KEYS = {
  /** [pgbouncer] / pgmux: */
  pgmux: [
    // process, files and logging: pgmux logs JSON to stdout and is supervised, not daemonised
    "user",
    "logfile",
    "pidfile",
    "conffile",
    "job_name",
    "service_name",
    "unix_socket_group",
    "syslog",
    "syslog_ident",
    "syslog_facility",
    "log_pooler_errors",
    "log_stats",
    "stats_period",
    "verbose",
    // authentication beyond a user list
    "auth_hba_file",
    "auth_ident_file",
    "auth_ldap_options",
    "auth_user",
    "auth_query",
    "auth_dbname",
    "scram_iterations",
    // pool behaviour
    "max_db_client_connections",
    "max_user_client_connections",
    "server_round_robin",
    "server_fast_close",
    "track_extra_parameters",
    "disable_pqexec",
    "application_name_add_host",
    "autodb_idle_timeout",
    "pool_idle_timeout",
    "query_wait_notify",
    "cancel_wait_timeout",
    "transaction_timeout",
    "suspend_timeout",
    "login_notify_message",
    // peering
    "peer_id",
    // DNS
    "dns_max_ttl",
    "dns_nxdomain_ttl",
    "dns_zone_check_period",
    "resolv_conf",
    // low-level network
    "pkt_buf",
    "sbuf_loopcnt",
    "listen_backlog",
    "so_reuseport",
    "tcp_defer_accept",
    "tcp_socket_buffer",
    "tcp_keepalive",
    "tcp_keepcnt",
    "tcp_keepidle",
    "tcp_keepintvl",
    "tcp_user_timeout",
    // TLS
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
  ],
  /** Keys of a [databases] connection string. */
  databases: [
    "auth_user",
    "auth_query",
    "auth_dbname",
    "max_db_client_connections",
    "server_lifetime",
    "query_wait_timeout",
    "load_balance_hosts",
    "target_session_attrs",
  ],
  /** Keys of a [users] entry. */
  users: [
    "reserve_pool_size",
    "max_user_client_connections",
    "query_timeout",
    "query_wait_timeout",
    "idle_transaction_timeout",
    "transaction_timeout",
    "client_idle_timeout",
  ],
  /** The whole [peers] section (cancel forwarding between poolers). */
  peers: ["*"],
} as const satisfies Record<string, readonly string[]>;

/**
 * Values of an implemented setting that pgmux cannot honour yet. Unlike an unimplemented key these do have an
 * effect (clients using them cannot log in), so the warning says which values work today.
 */
export const UNIMPLEMENTED_VALUES = {
  auth_type: ["cert", "hba", "pam", "ldap"],
} as const satisfies Record<string, readonly string[]>;
