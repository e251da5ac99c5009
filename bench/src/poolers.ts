/**
 * Starting and stopping the two poolers as the operator would run them: Debian's pgbouncer binary in the
 * foreground as the postgres OS user (it refuses root), and the pgmux CLI (`node packages/cli/dist/main.js
 * --config FILE`), each from its copy of the generated ini. A pooler is ready when it accepts TCP.
 */
import type { ChildProcess } from "node:child_process";
import { closeSync, type Dirent, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { OsUser } from "@pgmux/test/support";
import type { ChildProcesses } from "./child-processes.js";
import type { PoolerIni, PoolerKind } from "./pooler-config.js";

export const PGMUX_MAIN = fileURLToPath(new URL("../../packages/cli/dist/main.js", import.meta.url));

const READY_TIMEOUT_MS = 20_000;
const PGMUX_DIST_DIRS = ["protocol", "core", "admin", "cli"].map((p) =>
  fileURLToPath(new URL(`../../packages/${p}/dist/`, import.meta.url)),
);

/**
 * Which build of pgmux a start loads: the modification time of the newest built file of its packages. Others
 * may rebuild the workspace while a long run goes on; a pooler restarted after that runs the newer build.
 */
export function pgmuxBuild(): string {
  let newest = 0;
  const visit = (dir: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) visit(path);
      else if (e.name.endsWith(".js") && !e.name.endsWith(".test.js"))
        newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of PGMUX_DIST_DIRS) visit(dir);
  return newest > 0 ? new Date(newest).toISOString() : "unknown";
}

export interface PoolerProcess {
  readonly kind: PoolerKind;
  readonly ini: PoolerIni;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Where its stdout and stderr go. */
  readonly outputFile: string;
}

export interface StartPoolerOptions {
  readonly pgbouncerPath: string;
  /** The OS user pgbouncer runs as when we are root. */
  readonly osUser: OsUser | null;
  /** Extra node flags for pgmux, e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[];
}

export async function startPooler(
  children: ChildProcesses,
  ini: PoolerIni,
  options: StartPoolerOptions,
): Promise<PoolerProcess> {
  const outputFile = ini.kind === "pgmux" ? ini.logFile : `${ini.logFile}.stderr`;
  const out = openSync(outputFile, "a");
  let child: ChildProcess;
  try {
    child =
      ini.kind === "pgbouncer"
        ? children.spawn(options.pgbouncerPath, [ini.path], {
            stdio: ["ignore", out, out],
            cwd: ini.socketDir,
            ...(options.osUser ? { uid: options.osUser.uid, gid: options.osUser.gid } : {}),
          })
        : children.spawn(process.execPath, [...(options.nodeFlags ?? []), PGMUX_MAIN, "--config", ini.path], {
            stdio: ["ignore", out, out],
            cwd: ini.socketDir,
          });
  } finally {
    closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${ini.kind} did not start (${ini.path})`);
  const pooler: PoolerProcess = { kind: ini.kind, ini, child, pid, outputFile };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await accepts(ini.port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await children.stop(child, "SIGKILL");
      throw new Error(`${ini.kind} did not start listening on 127.0.0.1:${ini.port}\n${outputTail(pooler)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pooler;
}

/** SIGTERM (pgmux writes its CPU profile on this orderly exit; pgbouncer shuts down), SIGKILL after 15 s. */
export async function stopPooler(children: ChildProcesses, pooler: PoolerProcess): Promise<void> {
  await children.stop(pooler.child, "SIGTERM", 15_000);
}

export function isRunning(pooler: PoolerProcess): boolean {
  return pooler.child.exitCode === null && pooler.child.signalCode === null;
}

/** The last lines of what the pooler printed and logged, for error messages. */
export function outputTail(pooler: PoolerProcess, lines = 30): string {
  const files = pooler.kind === "pgbouncer" ? [pooler.ini.logFile, pooler.outputFile] : [pooler.outputFile];
  return files
    .map((file) => {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch {
        text = "(nothing)";
      }
      return `--- ${file} ---\n${text.trimEnd().split("\n").slice(-lines).join("\n")}`;
    })
    .join("\n");
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
