/**
 * What every benchmark run stands on: a throwaway PostgreSQL from the test harness (tuned for benchmarking,
 * max_connections for 500 direct clients and more), a `bench` database filled by `pgbench -i`, a work
 * directory owned by the postgres OS user, and the generated ini pairs for the two poolers.
 */
import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanupOnExit, freePort, type OsUser, PostgresCluster } from "@pgmux/test/support";
import type { ChildProcesses } from "./child-processes.js";
import { capture, type Endpoint, pgbenchEnv } from "./pgbench.js";
import { type ClientAuthType, type PoolerIniPair, writePoolerConfigs } from "./pooler-config.js";

export const DATABASE = "bench";
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface Versions {
  readonly postgres: string;
  readonly pgbench: string;
  readonly node: string;
  readonly pgmux: string;
  readonly commit: string;
}

export class BenchEnvironment {
  readonly #unregister: () => void;

  private constructor(
    readonly cluster: PostgresCluster,
    readonly workDir: string,
    readonly osUser: OsUser | null,
    readonly versions: Versions,
  ) {
    this.#unregister = cleanupOnExit(() => rmSync(workDir, { recursive: true, force: true }));
  }

  static async start(
    children: ChildProcesses,
    scaleFactor: number,
    log: (line: string) => void,
  ): Promise<BenchEnvironment> {
    log("starting a throwaway PostgreSQL (max_connections 700)");
    const cluster = await PostgresCluster.start({
      maxConnections: 700,
      settings: {
        shared_buffers: "256MB",
        max_wal_size: "4GB",
        checkpoint_timeout: "30min",
      },
    });
    try {
      return await BenchEnvironment.#prepare(children, cluster, scaleFactor, log);
    } catch (error) {
      await cluster.destroy().catch(() => {});
      throw error;
    }
  }

  static async #prepare(
    children: ChildProcesses,
    cluster: PostgresCluster,
    scaleFactor: number,
    log: (line: string) => void,
  ): Promise<BenchEnvironment> {
    const osUser = cluster.descriptor().osUser;
    const workDir = mkdtempSync(join(tmpdir(), "pgmux-bench-"));
    if (osUser) chownSync(workDir, osUser.uid, osUser.gid);
    const binDir = cluster.descriptor().binDir;
    const env = new BenchEnvironment(cluster, workDir, osUser, {
      postgres: await cluster.psql("SHOW server_version;"),
      pgbench: execFileSync(join(binDir, "pgbench"), ["--version"], { encoding: "utf8" }).trim(),
      node: process.version,
      pgmux: (JSON.parse(readFileSync(join(REPO_ROOT, "packages/cli/package.json"), "utf8")) as { version: string })
        .version,
      commit: gitCommit(),
    });
    await cluster.createDatabase(DATABASE);
    log(`pgbench -i -s ${scaleFactor} ${DATABASE}`);
    const init = await capture(
      children,
      join(binDir, "pgbench"),
      [
        "-i",
        "-q",
        "-s",
        String(scaleFactor),
        "-h",
        cluster.host,
        "-p",
        String(cluster.port),
        "-U",
        cluster.user,
        DATABASE,
      ],
      { env: pgbenchEnv(env.direct), timeoutMs: 600_000 },
    );
    if (init.code !== 0) throw new Error(`pgbench -i failed (${init.code}):\n${init.stderr}`);
    return env;
  }

  get binDir(): string {
    return this.cluster.descriptor().binDir;
  }

  get direct(): Endpoint {
    return {
      host: this.cluster.host,
      port: this.cluster.port,
      user: this.cluster.user,
      password: this.cluster.password,
      database: DATABASE,
    };
  }

  /** The same user, password and database through a pooler's port. */
  via(port: number): Endpoint {
    return { ...this.direct, host: "127.0.0.1", port };
  }

  /** Writes a fresh ini pair (new ports) for `authType`. */
  async writeInis(authType: ClientAuthType, maxClientConn: number): Promise<PoolerIniPair> {
    const cluster = this.cluster;
    return writePoolerConfigs({
      dir: this.workDir,
      owner: this.osUser,
      server: { host: cluster.host, port: cluster.port, dbname: DATABASE },
      database: DATABASE,
      user: cluster.user,
      password: cluster.password,
      authType,
      defaultPoolSize: 20,
      maxClientConn,
      ports: { pgbouncer: await freePort(), pgmux: await freePort() },
    });
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
    rmSync(this.workDir, { recursive: true, force: true });
    this.#unregister();
  }
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}
