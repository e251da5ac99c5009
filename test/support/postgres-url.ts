import type { PostgresConnectionParams } from "./test-postgres.js";

/** A libpq-style URL (`postgres://user:password@host:port/database`) that pg, postgres.js and psql all accept. */
export function postgresUrl(params: PostgresConnectionParams): string {
  const auth = `${encodeURIComponent(params.user)}:${encodeURIComponent(params.password)}`;
  return `postgres://${auth}@${params.host}:${params.port}/${encodeURIComponent(params.database)}`;
}
