import { spawn } from "node:child_process";

/** A POSIX identity to run a command as (root only: PostgreSQL refuses to run as root). */
export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface RunCommandOptions {
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly asUser?: OsUser | null;
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string;
}

export interface CommandResult {
  /** Exit code, or null when the command was ended by a signal (including our own timeout kill). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

// How long to keep collecting output after the process exited: pg_ctl's daemonized postmaster has its stdio
// redirected, but if anything ever inherits our pipes, 'close' would never come and we must not wait on it.
const DRAIN_AFTER_EXIT_MS = 1_000;

/**
 * Runs a command to completion with a hard deadline and never rejects for a non-zero exit: callers decide
 * what a failure means and build the error message (they know which log tail to attach).
 */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.asUser ? { uid: options.asUser.uid, gid: options.asUser.gid } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const finish = () => {
      if (settled || !exit) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(drainTimer);
      resolve({
        code: exit.code,
        signal: exit.signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs);

    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(new Error(`could not run ${file}: ${error.message}`, { cause: error }));
    });
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(finish, DRAIN_AFTER_EXIT_MS);
    });
    child.on("close", () => finish());

    // A command that does not read its stdin may close it first: EPIPE here is not our failure.
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}

/** One line saying how a command ended, for error messages. */
export function describeResult(result: CommandResult): string {
  if (result.timedOut) return "timed out and was killed";
  if (result.signal) return `was killed by ${result.signal}`;
  return `exited with code ${result.code}`;
}
