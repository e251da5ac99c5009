/**
 * Every error pgmux itself raises to a client, in one registry: its code (stable, used in logs and metrics),
 * SQLSTATE, severity (FATAL closes the client), and a message that says what happened and what to do.
 * A server's own ErrorResponse is never in here: it is relayed byte for byte.
 * docs/errors.md lists the same codes; a test keeps the two in step.
 */
export interface PoolerErrorSpec {
  readonly sqlState: string;
  readonly severity: "ERROR" | "FATAL";
  /** The message; `{name}` placeholders are filled from the details given when raising it. */
  readonly message: string;
  readonly hint?: string;
}

export const PoolerErrors = {
  protocol_violation: {
    sqlState: "08P01",
    severity: "FATAL",
    message: "protocol violation: {reason}",
    hint: "The client sent bytes that are not a valid PostgreSQL v3 protocol message; check the driver.",
  },
  unsupported_protocol: {
    sqlState: "08P01",
    severity: "FATAL",
    message: "unsupported frontend protocol {version}: pgmux speaks protocol 3.0",
  },
  no_user: {
    sqlState: "28000",
    severity: "FATAL",
    message: 'no PostgreSQL user name specified in startup packet (set "user")',
  },
  auth_failed: {
    sqlState: "28P01",
    severity: "FATAL",
    message: 'password authentication failed for user "{user}"',
  },
  unknown_database: {
    sqlState: "3D000",
    severity: "FATAL",
    message: 'database "{database}" is not configured in pgmux',
    hint: 'Add it to the [databases] section, or a "*" fallback entry.',
  },
  unknown_startup_parameter: {
    sqlState: "08P01",
    severity: "FATAL",
    message: 'unsupported startup parameter "{name}"',
    hint: "Add it to ignore_startup_parameters to let pgmux drop it, or stop sending it.",
  },
  too_many_clients: {
    sqlState: "53300",
    severity: "FATAL",
    message: "no more connections allowed: max_client_conn ({limit}) reached",
    hint: "Raise max_client_conn, or reduce the number of client connections.",
  },
  pool_wait_timeout: {
    sqlState: "53300",
    severity: "FATAL",
    message:
      'query_wait_timeout: no server connection of pool "{pool}" became free within {seconds} s (pool size {size})',
    hint: "Raise default_pool_size or query_wait_timeout, or shorten transactions.",
  },
  server_unreachable: {
    sqlState: "08001",
    severity: "FATAL",
    message: 'pgmux could not connect to the server of pool "{pool}": {reason}',
    hint: "Check that PostgreSQL is running and that the [databases] entry points to it.",
  },
  server_login_failed: {
    sqlState: "08001",
    severity: "FATAL",
    message: 'pgmux could not log in to the server of pool "{pool}": {reason}',
    hint: "Check the password for this user in the [databases] entry or the auth_file.",
  },
  server_lost: {
    sqlState: "08006",
    severity: "FATAL",
    message: "the server connection was lost while in use: {reason}",
    hint: "The current transaction is lost; reconnect and retry it.",
  },
  shutting_down: {
    sqlState: "57P01",
    severity: "FATAL",
    message: "pgmux is shutting down",
    hint: "Reconnect; another pgmux instance should take the connection.",
  },
  database_removed: {
    sqlState: "57P01",
    severity: "FATAL",
    message: 'database "{database}" was removed from the pgmux configuration',
    hint: "The configuration was reloaded without this database; connect to another one.",
  },
  client_idle_timeout: {
    sqlState: "57P05",
    severity: "FATAL",
    message: "client_idle_timeout: the connection was idle for more than {seconds} s",
  },
  client_login_timeout: {
    sqlState: "08P01",
    severity: "FATAL",
    message: "client_login_timeout: login did not complete within {seconds} s",
  },
  idle_transaction_timeout: {
    sqlState: "25P03",
    severity: "FATAL",
    message: "idle_transaction_timeout: the transaction was idle for more than {seconds} s",
  },
  query_timeout: {
    sqlState: "57014",
    severity: "FATAL",
    message: "query_timeout: the query ran for more than {seconds} s",
  },
  statement_mode_transaction: {
    sqlState: "0A000",
    severity: "FATAL",
    message: 'transaction blocks are not allowed in statement pooling mode (pool "{pool}")',
    hint: "Use autocommit statements, or switch this pool to transaction pooling.",
  },
  server_terminated_copy_both: {
    sqlState: "0A000",
    severity: "FATAL",
    message: "replication (COPY BOTH) is not supported in {mode} pooling mode",
    hint: "Use session pooling for replication connections.",
  },
} as const satisfies Record<string, PoolerErrorSpec>;

export type PoolerErrorCode = keyof typeof PoolerErrors;

/** Fills `{name}` placeholders; a missing detail stays visible rather than printing "undefined". */
export function formatPoolerMessage(template: string, details: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const v = details[key];
    return v === undefined ? whole : String(v);
  });
}
