/**
 * What Linux says about a process, from /proc: CPU time (utime + stime, all threads), resident memory
 * (VmRSS) and its peak (VmHWM), which a write of "5" to clear_refs resets (Linux 4.0+, needs the right to
 * write there: root, or the process's owner).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

let clockTicksPerSecond: number | undefined;

/** sysconf(_SC_CLK_TCK): the unit of utime/stime in /proc/<pid>/stat (100 on practically every Linux). */
export function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    let ticks = 100;
    try {
      ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      // getconf missing: keep Linux's usual value.
    }
    clockTicksPerSecond = ticks;
  }
  return clockTicksPerSecond;
}

/** CPU seconds the process has used so far, user + system, all its threads. */
export function cpuSeconds(pid: number): number {
  const { userSeconds, systemSeconds } = cpuTimes(pid);
  return userSeconds + systemSeconds;
}

export interface CpuTimes {
  readonly userSeconds: number;
  /** In the kernel on the process's behalf: system calls (socket reads and writes), page faults. */
  readonly systemSeconds: number;
}

export function cpuTimes(pid: number): CpuTimes {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // "pid (comm) state ..." — comm may hold spaces and parentheses: count fields after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After comm, field 3 (state) is index 0, so utime (field 14) is index 11 and stime (15) index 12.
  return { userSeconds: Number(fields[11]) / clockTicks(), systemSeconds: Number(fields[12]) / clockTicks() };
}

export interface MemoryKb {
  /** Resident set size now. */
  readonly rssKb: number;
  /** Peak resident set size since start or since the last resetPeakRss(). */
  readonly peakRssKb: number;
}

export function memoryKb(pid: number): MemoryKb {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return { rssKb: statusField(status, "VmRSS"), peakRssKb: statusField(status, "VmHWM") };
}

/** Resets VmHWM to the current RSS; false when the kernel or our rights do not allow it. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

function statusField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status);
  return match ? Number(match[1]) : Number.NaN;
}
