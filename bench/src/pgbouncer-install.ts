/**
 * PgBouncer from the distribution (Debian 12: 1.18), installed with apt-get when it is missing. The
 * package's own service must not run: a policy-rc.d that forbids service starts is put in place for the
 * install when none exists (and removed after), and a pgbouncer the package started anyway is stopped by the
 * PID in its pidfile. The benchmark runs its own pgbouncer processes from its own ini files.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const CANDIDATES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];
const POLICY_RC_D = "/usr/sbin/policy-rc.d";
const PACKAGE_PIDFILE = "/run/postgresql/pgbouncer.pid";

export interface Pgbouncer {
  readonly path: string;
  readonly version: string;
  /** True when this run installed it. */
  readonly installed: boolean;
}

export function findPgbouncer(): string | undefined {
  return CANDIDATES.find((path) => existsSync(path));
}

export function ensurePgbouncer(log: (line: string) => void): Pgbouncer {
  let path = findPgbouncer();
  let installed = false;
  if (path === undefined) {
    if (process.getuid?.() !== 0) {
      throw new Error("pgbouncer is not installed and installing it needs root: apt-get install -y pgbouncer");
    }
    log("pgbouncer is missing: installing Debian's package (apt-get update && apt-get install -y pgbouncer)");
    install();
    path = findPgbouncer();
    if (path === undefined) throw new Error("apt-get installed pgbouncer, but no pgbouncer binary was found");
    installed = true;
  }
  const version = execFileSync(path, ["--version"], { encoding: "utf8" }).split("\n")[0]?.trim() ?? "unknown";
  return { path, version, installed };
}

function install(): void {
  const ownPolicy = !existsSync(POLICY_RC_D);
  // exit 101: "action forbidden by policy" — invoke-rc.d then starts no service during the install.
  if (ownPolicy) writeFileSync(POLICY_RC_D, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    for (const args of [["update"], ["install", "-y", "pgbouncer"]]) {
      const result = spawnSync("apt-get", args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      if (result.status !== 0) {
        throw new Error(`apt-get ${args.join(" ")} failed (${result.status}): ${result.stderr.trim().slice(-2000)}`);
      }
    }
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
    stopPackageService();
  }
}

/** Should the package have started its service regardless, stop that process by its PID. */
function stopPackageService(): void {
  if (!existsSync(PACKAGE_PIDFILE)) return;
  const pid = Number.parseInt(readFileSync(PACKAGE_PIDFILE, "utf8"), 10);
  if (!(pid > 0)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // Not running.
  }
}
