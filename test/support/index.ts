/**
 * Test support for pgmux: real PostgreSQL servers for integration tests and byte-level capture tools.
 * Start at testPostgres() (the run's shared server) or PostgresCluster.start() (a cluster of a test's own).
 */
export { cleanupOnExit } from "./cleanup-on-exit.js";
export { ExternalPostgres } from "./external-postgres.js";
export { findPgBinDir } from "./find-pg-bin-dir.js";
export { freePort } from "./free-port.js";
export { PostgresCluster, type PostgresClusterDescriptor, type PostgresClusterOptions } from "./postgres-cluster.js";
export { postgresUrl } from "./postgres-url.js";
export { RawPeer } from "./raw-peer.js";
export {
  type RecordedChunk,
  type RecordedConnection,
  RecordingRelay,
  type RelayDirection,
  type RelayTarget,
} from "./recording-relay.js";
export type { CommandResult, OsUser, RunCommandOptions } from "./run-command.js";
export { runCommand } from "./run-command.js";
export {
  AUTH_GROUP_ROLES,
  type CreateDatabaseOptions,
  type CreateRoleOptions,
  quoteIdent,
  quoteLiteral,
  type RoleAuthMethod,
} from "./sql-text.js";
export { type PostgresConnectionParams, type PsqlOptions, type TestPostgres, testPostgres } from "./test-postgres.js";
export { type WaitUntilOptions, waitUntil } from "./wait-until.js";
