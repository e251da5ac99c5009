import { existsSync } from "node:fs";
import { join } from "node:path";
import { findPgBinDir } from "./find-pg-bin-dir.js";
import { postgresUrl } from "./postgres-url.js";
import { describeResult, runCommand } from "./run-command.js";
import { type CreateDatabaseOptions, type CreateRoleOptions, createDatabaseSql, createRoleSql } from "./sql-text.js";
import type { PostgresConnectionParams, PsqlOptions, TestPostgres } from "./test-postgres.js";

/**
 * A server someone else runs, named by a URL (PG_TEST_URL): connect, run SQL, create roles and databases;
 * never start, stop or kill it. The URL's user should be a superuser (tests create roles and databases).
 *
 * Its pg_hba.conf is not ours: createRole stores the secret in the requested format (md5 or SCRAM), but
 * whether the server then asks for md5, SCRAM or cleartext is up to that file.
 */
export class ExternalPostgres implements TestPostgres {
  readonly kind = "external";
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly #psqlPath: string;

  constructor(url: string) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error("PG_TEST_URL is not a URL: expected postgres://user:password@host:port/database");
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      throw new Error(`PG_TEST_URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`);
    }
    // URL keeps IPv6 literals bracketed; libpq and the drivers want them bare.
    this.host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
    this.port = parsed.port ? Number(parsed.port) : 5432;
    this.user = decodeURIComponent(parsed.username) || "postgres";
    this.password = decodeURIComponent(parsed.password);
    this.database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || this.user;
    this.#psqlPath = findPsql();
  }

  get url(): string {
    return postgresUrl(this);
  }

  params(overrides: Partial<PostgresConnectionParams> = {}): PostgresConnectionParams {
    const { host, port, user, password, database } = this;
    return { host, port, user, password, database, ...overrides };
  }

  urlFor(overrides: Partial<PostgresConnectionParams> = {}): string {
    return postgresUrl(this.params(overrides));
  }

  async psql(sql: string, options: PsqlOptions = {}): Promise<string> {
    const args = [
      ...["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
      ...["-h", this.host, "-p", String(this.port)],
      ...["-U", options.user ?? this.user, "-d", options.database ?? this.database, "-f", "-"],
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: this.password, PGCONNECT_TIMEOUT: "10" };
    const result = await runCommand(this.#psqlPath, args, { timeoutMs: options.timeoutMs ?? 30_000, env, input: sql });
    if (result.code !== 0) {
      throw new Error(
        `psql against PG_TEST_URL (${this.host}:${this.port}) ${describeResult(result)}: ${result.stderr.trim()}`,
      );
    }
    return result.stdout.replace(/\n$/, "");
  }

  async createRole(name: string, password: string, options: CreateRoleOptions = {}): Promise<void> {
    await this.psql(createRoleSql(name, password, options, false));
  }

  async createDatabase(name: string, options: CreateDatabaseOptions = {}): Promise<void> {
    await this.psql(createDatabaseSql(name, options));
  }

  async terminate(pid: number): Promise<boolean> {
    return (await this.psql(`SELECT pg_terminate_backend(${Math.trunc(pid)});`)) === "t";
  }

  start(): Promise<void> {
    return this.#unsupported("start");
  }
  stop(): Promise<void> {
    return this.#unsupported("stop");
  }
  restart(): Promise<void> {
    return this.#unsupported("restart");
  }
  kill(): Promise<void> {
    return this.#unsupported("kill");
  }

  #unsupported(what: string): Promise<never> {
    return Promise.reject(
      new Error(
        `${what}() is not supported on the external server from PG_TEST_URL (${this.host}:${this.port}): ` +
          "its lifecycle is not the harness's. Unset PG_TEST_URL to run this test on a local cluster, " +
          "or start one for it with PostgresCluster.start()",
      ),
    );
  }
}

/** The psql matching the local server binaries when there are some, else whatever psql is on PATH. */
function findPsql(): string {
  try {
    const path = join(findPgBinDir(), "psql");
    if (existsSync(path)) return path;
  } catch {
    // No local server binaries: an external server is exactly the case where that is fine.
  }
  return "psql";
}
