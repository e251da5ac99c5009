import { ExternalPostgres } from "./external-postgres.js";
import { PostgresCluster, type PostgresClusterDescriptor } from "./postgres-cluster.js";
import type { CreateDatabaseOptions, CreateRoleOptions } from "./sql-text.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Set by test/support/global-setup.ts: the run's shared cluster, started in the vitest main process. */
    pgmuxPostgres: PostgresClusterDescriptor;
  }
}

/** Where and as whom to connect over TCP. */
export interface PostgresConnectionParams {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export interface PsqlOptions {
  readonly user?: string;
  readonly database?: string;
  readonly timeoutMs?: number;
}

/**
 * A PostgreSQL server for tests: a throwaway local cluster (PostgresCluster) or a server named by
 * PG_TEST_URL (ExternalPostgres). The connection fields describe the superuser over TCP.
 */
export interface TestPostgres extends PostgresConnectionParams {
  /** "local": a cluster started from local binaries; "external": PG_TEST_URL, whose lifecycle is not ours. */
  readonly kind: "local" | "external";
  /** The superuser's URL over TCP. */
  readonly url: string;
  /** Connection parameters with some fields replaced (another role, another database). */
  params(overrides?: Partial<PostgresConnectionParams>): PostgresConnectionParams;
  urlFor(overrides?: Partial<PostgresConnectionParams>): string;
  /**
   * Runs `sql` with psql as the superuser (statements one by one, stopping at the first error) and returns
   * its stdout in unaligned tuples-only form (`a|b` per row), without the final newline.
   */
  psql(sql: string, options?: PsqlOptions): Promise<string>;
  createRole(name: string, password: string, options?: CreateRoleOptions): Promise<void>;
  createDatabase(name: string, options?: CreateDatabaseOptions): Promise<void>;
  /** pg_terminate_backend(pid); true when a backend was signalled. */
  terminate(pid: number): Promise<boolean>;
  start(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  kill(): Promise<void>;
}

let shared: Promise<TestPostgres> | undefined;

/**
 * The run's shared server, resolved once per process:
 * - PG_TEST_URL set: that server (lifecycle controls throw);
 * - inside vitest with test/support/global-setup.ts configured: the cluster the global setup started in the
 *   main process, attached to by its files (every test file runs in a fresh worker process, so a module-level
 *   singleton alone would start one cluster per file);
 * - otherwise: a cluster started lazily in this process and stopped when the process ends.
 *
 * Tests sharing it run one file at a time; a test that stops or kills it must start it again before it ends,
 * and a test that needs its own lifecycle should use PostgresCluster.start() instead.
 */
export function testPostgres(): Promise<TestPostgres> {
  shared ??= resolveShared().catch((error: unknown) => {
    // Let the next caller try again rather than replaying a failure that may have been transient.
    shared = undefined;
    throw error;
  });
  return shared;
}

async function resolveShared(): Promise<TestPostgres> {
  const url = process.env.PG_TEST_URL;
  if (url) return new ExternalPostgres(url);

  // A container route would plug in here: when a Docker engine answers (DOCKER_HOST, or a connectable
  // /var/run/docker.sock), a testcontainers PostgreSqlContainer could stand in for local binaries, returned
  // through ExternalPostgres with its mapped port. It is not wired up: testcontainers is not a dependency and
  // the machines these tests run on have the server binaries and no engine.

  if (process.env.VITEST) {
    // Imported only under vitest: scripts (capture-goldens) use this module outside any runner.
    const { inject } = await import("vitest");
    const provided = inject("pgmuxPostgres") as PostgresClusterDescriptor | undefined;
    if (provided) return PostgresCluster.attach(provided);
  }
  return PostgresCluster.start();
}
