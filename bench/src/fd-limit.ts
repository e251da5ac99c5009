/**
 * Raises this process's open-file limit, soft and hard, with util-linux `prlimit --pid` (Node has no
 * setrlimit). Children inherit it: the poolers, pgbench and the client workers all need far more than the
 * usual 1,024 or 20,000 descriptors to hold 50k connections. Raising the hard limit needs root.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface FdLimit {
  readonly limit: number;
  /** Why the limit could not be raised to what was wanted, when it could not. */
  readonly problem?: string;
}

export function raiseFdLimit(wanted: number): FdLimit {
  const current = openFileLimit();
  if (current >= wanted) return { limit: current };
  try {
    execFileSync("prlimit", ["--pid", String(process.pid), `--nofile=${wanted}:${wanted}`], { stdio: "pipe" });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    const detail = stderr || (error instanceof Error ? error.message.split("\n")[0] : String(error));
    return { limit: openFileLimit(), problem: `prlimit --nofile=${wanted}: ${detail}` };
  }
  return { limit: openFileLimit() };
}

/** The soft limit on open files, from /proc/self/limits. */
export function openFileLimit(): number {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
  return soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft);
}
