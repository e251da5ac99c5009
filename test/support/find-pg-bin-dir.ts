import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const DEBIAN_ROOT = "/usr/lib/postgresql";

/**
 * The directory holding initdb, pg_ctl, postgres and psql: `PG_BIN_DIR` when set, else the newest Debian-style
 * `/usr/lib/postgresql/<major>/bin`, else what `pg_config --bindir` says. Debian puts only wrappers on PATH
 * (pg_ctlcluster and friends), so PATH alone would not find initdb there.
 */
export function findPgBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.PG_BIN_DIR;
  if (fromEnv) {
    if (!hasServerBinaries(fromEnv)) throw new Error(`PG_BIN_DIR=${fromEnv} has no initdb/pg_ctl/postgres`);
    return fromEnv;
  }

  if (existsSync(DEBIAN_ROOT)) {
    const majors = readdirSync(DEBIAN_ROOT)
      .filter((name) => /^\d+(\.\d+)?$/.test(name))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    for (const major of majors) {
      const dir = join(DEBIAN_ROOT, major, "bin");
      if (hasServerBinaries(dir)) return dir;
    }
  }

  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", timeout: 10_000 }).trim();
    if (dir && hasServerBinaries(dir)) return dir;
  } catch {
    // No pg_config on PATH: fall through to the error that says what to install or set.
  }
  throw new Error(
    "no PostgreSQL server binaries found: set PG_BIN_DIR to the directory holding initdb and pg_ctl, " +
      `install them under ${DEBIAN_ROOT}/<major>/bin, or put pg_config on PATH (or set PG_TEST_URL to use a running server)`,
  );
}

function hasServerBinaries(dir: string): boolean {
  return ["initdb", "pg_ctl", "postgres"].every((name) => existsSync(join(dir, name)));
}
