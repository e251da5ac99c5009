import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { appendFile, mkdtemp, open, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanupOnExit } from "./cleanup-on-exit.js";
import { ClusterReaper } from "./cluster-reaper.js";
import { findPgBinDir } from "./find-pg-bin-dir.js";
import { freePort } from "./free-port.js";
import { postgresUrl } from "./postgres-url.js";
import { type CommandResult, describeResult, type OsUser, runCommand } from "./run-command.js";
import {
  AUTH_GROUP_ROLES,
  type CreateDatabaseOptions,
  type CreateRoleOptions,
  createDatabaseSql,
  createRoleSql,
  quoteIdent,
} from "./sql-text.js";
import type { PostgresConnectionParams, PsqlOptions, TestPostgres } from "./test-postgres.js";
import { waitUntil } from "./wait-until.js";

export interface PostgresClusterOptions {
  /** The superuser created by initdb; default "postgres". */
  readonly user?: string;
  /** The superuser's password (stored as SCRAM); default random. */
  readonly password?: string;
  /** The database `url` points at; default "postgres". It must exist (create others with createDatabase). */
  readonly database?: string;
  /** A fixed TCP port; default a free one, re-picked if another process takes it before the server binds. */
  readonly port?: number;
  /** Default: PG_BIN_DIR, else the newest /usr/lib/postgresql/<major>/bin, else `pg_config --bindir`. */
  readonly binDir?: string;
  /** Where the cluster's temporary directory is created; default os.tmpdir(). */
  readonly baseDir?: string;
  /** The OS user that runs the server when we are root (PostgreSQL refuses root); default "postgres". */
  readonly osUser?: string;
  /** Default 300: load tests open many connections. */
  readonly maxConnections?: number;
  /** Extra postgresql.conf settings, applied after ours. */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  /** Bounds initdb and each start; default 60 s. */
  readonly startTimeoutMs?: number;
  /** Bounds each stop and kill; default 30 s. */
  readonly stopTimeoutMs?: number;
}

/** Everything needed to drive a running cluster from another process (JSON-serializable, for vitest provide). */
export interface PostgresClusterDescriptor {
  readonly binDir: string;
  readonly rootDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly osUser: OsUser | null;
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
}

const HOST = "127.0.0.1";
const LOG_TAIL_LINES = 40;
const PORT_ATTEMPTS = 3;
// Generous for pg_ctl's own wait, then a margin so its error message, not our kill, reports a slow start.
const PG_CTL_MARGIN_MS = 10_000;

/**
 * A throwaway PostgreSQL cluster from the local server binaries: its own temporary directory (data, Unix
 * socket, log), a free TCP port on 127.0.0.1, a superuser with a SCRAM password, durability off for speed.
 *
 * pg_hba.conf: Unix socket `trust` (the psql helper); TCP `scram-sha-256`, except members of the group roles
 * in AUTH_GROUP_ROLES, which get `md5` and cleartext `password` (createRole's method puts a role there). Role
 * group matching needs no reload when a role is added.
 *
 * A cluster started here is stopped and its directory removed when the process ends, however it ends: exit
 * handlers for exits, errors and catchable signals, and a reaper process for SIGKILL.
 */
export class PostgresCluster implements TestPostgres {
  readonly kind = "local";
  #d: PostgresClusterDescriptor;
  readonly #owned: boolean;
  readonly #portFixed: boolean;
  #destroyed = false;
  #extraSettings: Readonly<Record<string, string | number | boolean>> = {};
  #reaper: ClusterReaper | undefined;
  #unregisterExit: (() => void) | undefined;

  private constructor(descriptor: PostgresClusterDescriptor, owned: boolean, portFixed: boolean) {
    this.#d = descriptor;
    this.#owned = owned;
    this.#portFixed = portFixed;
  }

  /** initdb into a fresh temporary directory and start the server; resolves when it accepts connections. */
  static async start(options: PostgresClusterOptions = {}): Promise<PostgresCluster> {
    const binDir = options.binDir ?? findPgBinDir();
    const osUser = resolveOsUser(options.osUser);
    const rootDir = await mkdtemp(join(options.baseDir ?? tmpdir(), "pgmux-pg-"));
    if (osUser) chownSync(rootDir, osUser.uid, osUser.gid);

    const cluster = new PostgresCluster(
      {
        binDir,
        rootDir,
        dataDir: join(rootDir, "data"),
        socketDir: rootDir,
        logFile: join(rootDir, "postgres.log"),
        host: HOST,
        port: options.port ?? (await freePort(HOST)),
        user: options.user ?? "postgres",
        password: options.password ?? randomBytes(18).toString("base64url"),
        database: options.database ?? "postgres",
        osUser,
        startTimeoutMs: options.startTimeoutMs ?? 60_000,
        stopTimeoutMs: options.stopTimeoutMs ?? 30_000,
      },
      true,
      options.port !== undefined,
    );
    // Guard the directory before initdb runs: a failure or a kill from here on must leave nothing behind.
    cluster.#guard();
    try {
      await cluster.#initdb(options);
      await cluster.start();
      await cluster.psql(
        Object.values(AUTH_GROUP_ROLES)
          .map((role) => `CREATE ROLE ${quoteIdent(role)} NOLOGIN;`)
          .join("\n"),
      );
    } catch (error) {
      await cluster.destroy().catch(() => {});
      throw error;
    }
    return cluster;
  }

  /**
   * A handle on a cluster another process started (the vitest global setup): start/stop/restart/kill work
   * through its data directory, but it is not ours to destroy, and this process's exit leaves it running.
   */
  static attach(descriptor: PostgresClusterDescriptor): PostgresCluster {
    return new PostgresCluster(descriptor, false, true);
  }

  descriptor(): PostgresClusterDescriptor {
    return { ...this.#d };
  }

  get host(): string {
    return this.#d.host;
  }
  get port(): number {
    return this.#d.port;
  }
  get user(): string {
    return this.#d.user;
  }
  get password(): string {
    return this.#d.password;
  }
  get database(): string {
    return this.#d.database;
  }
  get url(): string {
    return postgresUrl(this.#d);
  }
  get rootDir(): string {
    return this.#d.rootDir;
  }
  get dataDir(): string {
    return this.#d.dataDir;
  }
  get socketDir(): string {
    return this.#d.socketDir;
  }
  get logFile(): string {
    return this.#d.logFile;
  }

  params(overrides: Partial<PostgresConnectionParams> = {}): PostgresConnectionParams {
    const { host, port, user, password, database } = this.#d;
    return { host, port, user, password, database, ...overrides };
  }

  urlFor(overrides: Partial<PostgresConnectionParams> = {}): string {
    return postgresUrl(this.params(overrides));
  }

  /** The postmaster's PID when it is running, from postmaster.pid. */
  postmasterPid(): number | undefined {
    const pid = readPostmasterPid(this.#d.dataDir);
    return pid !== undefined && processAlive(pid) ? pid : undefined;
  }

  isRunning(): boolean {
    return this.postmasterPid() !== undefined;
  }

  /** Starts the server if it is not running (also after kill()); resolves when it accepts connections. */
  async start(): Promise<void> {
    this.#assertUsable("start");
    if (this.isRunning()) return;
    await this.#removeStaleLocks();

    for (let attempt = 1; ; attempt++) {
      const logOffset = fileSize(this.#d.logFile);
      const seconds = Math.max(1, Math.ceil(this.#d.startTimeoutMs / 1000));
      const result = await this.#pgCtl(
        ["start", "-D", this.#d.dataDir, "-l", this.#d.logFile, "-w", "-t", String(seconds), "-s"],
        this.#d.startTimeoutMs + PG_CTL_MARGIN_MS,
      );
      if (result.code === 0 && this.isRunning()) return;

      const log = await readFrom(this.#d.logFile, logOffset);
      // Whatever half-started must not linger past a failed start.
      this.#stopImmediateSync();
      if (!this.#portFixed && attempt < PORT_ATTEMPTS && /could not bind|address already in use/i.test(log)) {
        this.#d = { ...this.#d, port: await freePort(HOST) };
        await this.#writeSettings();
        continue;
      }
      throw new Error(
        `PostgreSQL did not start on ${HOST}:${this.#d.port} (pg_ctl ${describeResult(result)}): ` +
          `${result.stderr.trim() || result.stdout.trim() || "no output"}\n${formatLogTail(lastLines(log))}`,
      );
    }
  }

  /** Fast shutdown (sessions are ended, nothing waits for clients); escalates to immediate on timeout. */
  async stop(): Promise<void> {
    this.#assertUsable("stop");
    if (!this.isRunning()) return;
    const seconds = Math.max(1, Math.ceil(this.#d.stopTimeoutMs / 1000));
    const result = await this.#pgCtl(
      ["stop", "-D", this.#d.dataDir, "-m", "fast", "-w", "-t", String(seconds), "-s"],
      this.#d.stopTimeoutMs + PG_CTL_MARGIN_MS,
    );
    if (result.code === 0 && !this.isRunning()) return;

    this.#stopImmediateSync();
    if (this.isRunning()) {
      throw new Error(
        `PostgreSQL on port ${this.#d.port} did not stop (pg_ctl ${describeResult(result)}, then immediate mode)\n` +
          formatLogTail(this.logTail()),
      );
    }
    console.warn(`pgmux test cluster on port ${this.#d.port}: fast stop failed, stopped in immediate mode`);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * Simulates a crash: SIGKILL to the postmaster and every backend (pg_ctl starts the postmaster as a process
   * group leader, so the group is the whole server), then waits until all of them are gone. Connected clients
   * see their connections drop; start() brings the server back through crash recovery.
   */
  async kill(): Promise<void> {
    this.#assertUsable("kill");
    const pid = this.postmasterPid();
    if (pid === undefined) throw new Error(`kill(): the cluster on port ${this.#d.port} is not running`);
    const groupLeader = readProcessGroup(pid) === pid;
    try {
      process.kill(groupLeader ? -pid : pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
    await waitUntil(
      `the killed postmaster ${pid} and its backends to exit`,
      () => (groupLeader ? !groupAlive(pid) : !processAlive(pid)),
      { timeoutMs: this.#d.stopTimeoutMs, detail: () => formatLogTail(this.logTail()) },
    );
  }

  async terminate(pid: number): Promise<boolean> {
    return (await this.psql(`SELECT pg_terminate_backend(${Math.trunc(pid)});`)) === "t";
  }

  async psql(sql: string, options: PsqlOptions = {}): Promise<string> {
    this.#assertUsable("psql");
    const args = [
      ...["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
      ...["-h", this.#d.socketDir, "-p", String(this.#d.port)],
      ...["-U", options.user ?? this.#d.user, "-d", options.database ?? this.#d.database, "-f", "-"],
    ];
    const result = await runCommand(join(this.#d.binDir, "psql"), args, {
      timeoutMs: options.timeoutMs ?? 30_000,
      env: { ...serverEnv(), PGCONNECT_TIMEOUT: "10" },
      input: sql,
    });
    if (result.code !== 0) {
      throw new Error(`psql on port ${this.#d.port} ${describeResult(result)}: ${result.stderr.trim()}`);
    }
    return result.stdout.replace(/\n$/, "");
  }

  async createRole(name: string, password: string, options: CreateRoleOptions = {}): Promise<void> {
    await this.psql(createRoleSql(name, password, options, true));
  }

  async createDatabase(name: string, options: CreateDatabaseOptions = {}): Promise<void> {
    await this.psql(createDatabaseSql(name, options));
  }

  /** The last lines of the server log, for error messages and failing tests. */
  logTail(lines = LOG_TAIL_LINES): string {
    try {
      return lastLines(readFileSync(this.#d.logFile, "utf8"), lines);
    } catch {
      return "(no server log yet)";
    }
  }

  /** Stops the server and removes its directory. Only the process that started the cluster may do this. */
  async destroy(): Promise<void> {
    if (!this.#owned) {
      throw new Error(
        "destroy(): this cluster belongs to the process that started it (the vitest global setup), which removes it",
      );
    }
    if (this.#destroyed) return;
    try {
      await this.stop();
    } catch {
      // destroy() must not leave a server behind because a graceful stop failed.
      this.#stopImmediateSync();
    }
    await rm(this.#d.rootDir, { recursive: true, force: true });
    this.#destroyed = true;
    this.#unregisterExit?.();
    this.#reaper?.release();
  }

  #assertUsable(what: string): void {
    if (this.#destroyed) throw new Error(`${what}(): the cluster was destroyed`);
  }

  #guard(): void {
    this.#reaper = ClusterReaper.spawn({
      pgCtl: join(this.#d.binDir, "pg_ctl"),
      dataDir: this.#d.dataDir,
      rootDir: this.#d.rootDir,
      asUser: this.#d.osUser,
    });
    this.#unregisterExit = cleanupOnExit(() => {
      // Exit handlers must be synchronous: stop hard, delete, and tell the reaper it has nothing left to do.
      this.#stopImmediateSync();
      rmSync(this.#d.rootDir, { recursive: true, force: true });
      this.#destroyed = true;
      this.#reaper?.release();
    });
  }

  async #initdb(options: PostgresClusterOptions): Promise<void> {
    const pwFile = join(this.#d.rootDir, "superuser-password");
    await writeFile(pwFile, `${this.#d.password}\n`, { mode: 0o600 });
    this.#chown(pwFile);
    const args = [
      ...["-D", this.#d.dataDir, "-U", this.#d.user, `--pwfile=${pwFile}`],
      ...["--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"],
    ];
    const result = await runCommand(join(this.#d.binDir, "initdb"), args, {
      timeoutMs: this.#d.startTimeoutMs,
      env: serverEnv(this.#d.rootDir),
      cwd: this.#d.rootDir,
      asUser: this.#d.osUser,
    });
    await unlink(pwFile).catch(() => {});
    if (result.code !== 0) {
      throw new Error(
        `initdb into ${this.#d.dataDir} ${describeResult(result)}:\n${result.stderr.trim() || result.stdout.trim()}`,
      );
    }

    const hba = [
      "# Written by pgmux's test harness (test/support/postgres-cluster.ts).",
      "local all all trust",
      "local replication all trust",
      `host all +${AUTH_GROUP_ROLES.plain} ${HOST}/32 password`,
      `host all +${AUTH_GROUP_ROLES.md5} ${HOST}/32 md5`,
      `host all all ${HOST}/32 scram-sha-256`,
      `host replication all ${HOST}/32 scram-sha-256`,
      "",
    ].join("\n");
    await this.#writeOwned(join(this.#d.dataDir, "pg_hba.conf"), hba);
    await appendFile(join(this.#d.dataDir, "postgresql.conf"), "\ninclude_if_exists = 'pgmux.conf'\n");
    this.#extraSettings = { max_connections: options.maxConnections ?? 300, ...options.settings };
    await this.#writeSettings();
  }

  /** pgmux.conf, included last from postgresql.conf; rewritten when the port is re-picked. */
  async #writeSettings(): Promise<void> {
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: HOST,
      port: this.#d.port,
      unix_socket_directories: this.#d.socketDir,
      // A throwaway cluster: durability buys nothing and costs seconds per test run.
      fsync: false,
      synchronous_commit: false,
      full_page_writes: false,
      password_encryption: "scram-sha-256",
      timezone: "UTC",
      log_timezone: "UTC",
      log_line_prefix: "%m [%p] %q%u@%d ",
      ...this.#extraSettings,
    };
    const lines = Object.entries(settings).map(([key, value]) => `${key} = ${formatSetting(value)}`);
    await this.#writeOwned(join(this.#d.dataDir, "pgmux.conf"), `${lines.join("\n")}\n`);
  }

  async #writeOwned(path: string, text: string): Promise<void> {
    await writeFile(path, text, { mode: 0o600 });
    this.#chown(path);
  }

  #chown(path: string): void {
    if (this.#d.osUser) chownSync(path, this.#d.osUser.uid, this.#d.osUser.gid);
  }

  #pgCtl(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return runCommand(join(this.#d.binDir, "pg_ctl"), args, {
      timeoutMs,
      env: serverEnv(this.#d.rootDir),
      cwd: this.#d.rootDir,
      asUser: this.#d.osUser,
    });
  }

  /** Synchronous, for exit handlers and failure paths: immediate stop, then SIGKILL for anything left. */
  #stopImmediateSync(): void {
    const pid = readPostmasterPid(this.#d.dataDir);
    if (pid === undefined || !processAlive(pid)) return;
    spawnSync(join(this.#d.binDir, "pg_ctl"), ["stop", "-D", this.#d.dataDir, "-m", "immediate", "-w", "-t", "10"], {
      stdio: "ignore",
      timeout: 15_000,
      env: serverEnv(this.#d.rootDir),
      cwd: this.#d.rootDir,
      ...(this.#d.osUser ? { uid: this.#d.osUser.uid, gid: this.#d.osUser.gid } : {}),
    });
    if (processAlive(pid)) {
      try {
        process.kill(readProcessGroup(pid) === pid ? -pid : pid, "SIGKILL");
      } catch {
        // Gone between the check and the kill.
      }
    }
  }

  /**
   * After a SIGKILL the lock files stay behind. PostgreSQL clears them itself when their PID is dead (and
   * frees the old shared memory then), so only a PID that is a zombie, which PostgreSQL would take for a
   * live postmaster, needs our help.
   */
  async #removeStaleLocks(): Promise<void> {
    const pid = readPostmasterPid(this.#d.dataDir);
    if (pid === undefined || processAlive(pid) || !processExists(pid)) return;
    await rm(join(this.#d.dataDir, "postmaster.pid"), { force: true });
    await rm(join(this.#d.socketDir, `.s.PGSQL.${this.#d.port}.lock`), { force: true });
  }
}

function resolveOsUser(name = "postgres"): OsUser | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith(`${name}:`));
  const fields = line?.split(":");
  if (!fields || fields.length < 4) {
    throw new Error(
      `running as root, and PostgreSQL refuses to run as root: create an OS user "${name}" (or pass osUser) to run it`,
    );
  }
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** Our environment minus libpq's PG* variables, which would silently redirect initdb, pg_ctl or psql. */
function serverEnv(home?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PG")) env[key] = value;
  }
  env.LC_ALL = "C";
  env.TZ = "UTC";
  if (home) env.HOME = home;
  return env;
}

function formatSetting(value: string | number | boolean): string {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") return String(value);
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it just is not ours to signal.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Exists and is not a zombie: an orphaned postmaster killed under an init that does not reap stays a zombie. */
function processAlive(pid: number): boolean {
  if (!processExists(pid)) return false;
  return readProcStat(pid)?.state !== "Z";
}

function readProcessGroup(pid: number): number | undefined {
  return readProcStat(pid)?.pgrp;
}

/** Any live (non-zombie) process left in the group. Linux reads /proc; elsewhere signal 0 to the group. */
function groupAlive(pgid: number): boolean {
  if (!existsSync("/proc/self/stat")) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== "Z") return true;
  }
  return false;
}

function readProcStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  try {
    const handle = await open(path, "r");
    try {
      const size = (await handle.stat()).size;
      const buffer = Buffer.alloc(Math.max(0, size - offset));
      await handle.read(buffer, 0, buffer.length, offset);
      return buffer.toString("utf8");
    } finally {
      await handle.close();
    }
  } catch {
    return await readFile(path, "utf8").catch(() => "");
  }
}

function lastLines(text: string, lines = LOG_TAIL_LINES): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function formatLogTail(tail: string): string {
  return `--- server log (last lines) ---\n${tail || "(empty)"}\n--- end of server log ---`;
}
