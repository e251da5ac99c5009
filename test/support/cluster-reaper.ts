import { type ChildProcess, spawn } from "node:child_process";
import type { OsUser } from "./run-command.js";

export interface ClusterReaperTarget {
  readonly pgCtl: string;
  readonly dataDir: string;
  /** Removed entirely once the server is down. */
  readonly rootDir: string;
  readonly asUser: OsUser | null;
}

// Runs in its own small Node process. Its stdin is a pipe from the owner; the pipe closes when the owner dies
// however it dies, SIGKILL included, and that is the cue to stop the server and remove its directory.
// Terminal signals are ignored: Ctrl+C reaches the whole process group and the reaper must outlive its owner.
const REAPER_SCRIPT = `
process.title = "pgmux-cluster-reaper";
const { spawnSync } = require("node:child_process");
const { existsSync, readFileSync, rmSync } = require("node:fs");
const { join } = require("node:path");
const [pgCtl, dataDir, rootDir, uid, gid] = process.argv.slice(1);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => {});
const reap = () => {
  const pidFile = join(dataDir, "postmaster.pid");
  if (existsSync(pidFile)) {
    const asUser = uid === "" ? {} : { uid: Number(uid), gid: Number(gid) };
    spawnSync(pgCtl, ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "10"], { stdio: "ignore", timeout: 15000, ...asUser });
    try {
      const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\\n")[0], 10);
      if (pid > 0) process.kill(-pid, "SIGKILL");
    } catch {}
  }
  rmSync(rootDir, { recursive: true, force: true });
};
process.stdin.on("data", () => {});
process.stdin.on("close", () => { try { reap(); } finally { process.exit(0); } });
process.stdin.on("end", () => { try { reap(); } finally { process.exit(0); } });
`;

/**
 * A watchdog process per cluster that stops the server and deletes its files if the owning process dies
 * without cleaning up: the exit handlers cover normal exits and catchable signals, this covers SIGKILL (vitest
 * SIGKILLs a worker that does not stop within 500 ms of its SIGTERM).
 */
export class ClusterReaper {
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  static spawn(target: ClusterReaperTarget): ClusterReaper {
    const child = spawn(
      process.execPath,
      [
        "-e",
        REAPER_SCRIPT,
        target.pgCtl,
        target.dataDir,
        target.rootDir,
        target.asUser ? String(target.asUser.uid) : "",
        target.asUser ? String(target.asUser.gid) : "",
      ],
      // Detached: its own process group, so signals aimed at the owner's group do not reach it.
      { detached: true, stdio: ["pipe", "ignore", "ignore"] },
    );
    child.on("error", () => {});
    child.stdin?.on("error", () => {});
    // Neither the process nor the pipe may keep the owner's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return new ClusterReaper(child);
  }

  /** The owner cleaned up itself: end the watchdog without letting it touch anything. */
  release(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }
}
