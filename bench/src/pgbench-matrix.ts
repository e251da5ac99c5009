/**
 * The pgbench cells (script × protocol mode × clients) run against direct PostgreSQL, PgBouncer and pgmux,
 * interleaved — for each repetition, for each cell: direct, pgbouncer, pgmux — so that whatever the noisy
 * machine does over the run falls on all three alike; each cell is then summarized by medians.
 */
import type { PostgresCluster } from "@pgmux/test/support";
import type { ChildProcesses } from "./child-processes.js";
import {
  type Endpoint,
  type PgbenchMode,
  type PgbenchResult,
  type PgbenchScript,
  type Progress,
  runPgbench,
} from "./pgbench.js";
import type { PoolerSet } from "./pooler-set.js";
import { cpuSeconds, cpuTimes } from "./proc-stats.js";
import { median } from "./stats.js";

export const TARGETS = ["direct", "pgbouncer", "pgmux"] as const;
export type Target = (typeof TARGETS)[number];

export interface Cell {
  readonly script: PgbenchScript;
  readonly mode: PgbenchMode;
  readonly clients: number;
}

export const SCRIPT_NAMES: Readonly<Record<PgbenchScript, string>> = { "select-only": "select", "tpcb-like": "tpcb" };

export function cellName(cell: Cell): string {
  return `${SCRIPT_NAMES[cell.script]}/${cell.mode}/${cell.clients}`;
}

/** PgBouncer 1.18 cannot run -M prepared in transaction mode (named statements collide across clients). */
export function targetsFor(cell: Cell): readonly Target[] {
  return cell.mode === "prepared" ? ["direct", "pgmux"] : TARGETS;
}

export interface CellRun {
  readonly cell: string;
  readonly target: Target;
  readonly rep: number;
  readonly startedAt: string;
  readonly result: PgbenchResult;
  /** CPU seconds the target pooler used over the whole pgbench run, logins included (NaN for direct). */
  readonly poolerCpuSeconds: number;
  readonly poolerCpuSecondsPer10kTxWholeRun: number;
  /**
   * Steady state: CPU seconds between pgbench's first and last `-P 1` progress report (clients connected, not
   * yet leaving) per 10,000 transactions those reports count. Logins are measured apart (connection rate).
   */
  readonly poolerCpuSecondsPer10kTx: number;
  readonly steadySeconds: number;
  /** The steady-state figure split: user and system (kernel: socket system calls) CPU seconds per 10k tx. */
  readonly poolerUserSecondsPer10kTx: number;
  readonly poolerSystemSecondsPer10kTx: number;
  /** Set when the pooler died during the run (it was restarted for the next one). */
  readonly poolerDied?: string;
}

export interface MatrixContext {
  readonly children: ChildProcesses;
  readonly binDir: string;
  readonly cluster: PostgresCluster;
  readonly endpoints: Readonly<Record<Target, Endpoint>>;
  readonly poolers: PoolerSet;
  readonly logDir: string;
  readonly log: (line: string) => void;
  /** --rate: every run at this fixed rate (pgbench -R), so that pooler CPU per transaction compares at equal load. */
  readonly rate?: number;
}

export async function runMatrix(
  ctx: MatrixContext,
  cells: readonly Cell[],
  reps: number,
  seconds: number,
): Promise<CellRun[]> {
  const runs: CellRun[] = [];
  const total = reps * cells.reduce((n, c) => n + targetsFor(c).length, 0);
  for (let rep = 1; rep <= reps; rep++) {
    for (const cell of cells) {
      for (const target of targetsFor(cell)) {
        const run = await runOne(ctx, cell, target, rep, seconds, runs.length);
        runs.push(run);
        ctx.log(`[${runs.length}/${total}] rep ${rep} ${cellName(cell).padEnd(22)} ${target.padEnd(9)} ${line(run)}`);
      }
    }
  }
  return runs;
}

async function runOne(
  ctx: MatrixContext,
  cell: Cell,
  target: Target,
  rep: number,
  seconds: number,
  index: number,
): Promise<CellRun> {
  // pgbench's own pre-run housekeeping, done directly so it costs no pooler anything: with -n it is skipped.
  if (cell.script === "tpcb-like") {
    await ctx.cluster.psql("VACUUM pgbench_branches; VACUUM pgbench_tellers; TRUNCATE pgbench_history;", {
      database: ctx.endpoints.direct.database,
      timeoutMs: 120_000,
    });
  }
  const pid = target === "direct" ? undefined : ctx.poolers.get(target).pid;
  const cpuBefore = pid === undefined ? Number.NaN : cpuSeconds(pid);
  const startedAt = new Date().toISOString();
  const none = { userSeconds: Number.NaN, systemSeconds: Number.NaN };
  const steady = { first: none, last: none, firstAt: 0, lastAt: 0, transactions: 0 };
  const onProgress = (p: Progress) => {
    if (pid === undefined) return;
    const cpu = cpuTimes(pid);
    if (Number.isNaN(steady.first.userSeconds)) {
      steady.first = cpu;
      steady.firstAt = p.seconds;
    } else {
      steady.transactions += p.tps * (p.seconds - steady.lastAt);
      steady.last = cpu;
    }
    steady.lastAt = p.seconds;
  };
  const result = await runPgbench(
    ctx.children,
    ctx.binDir,
    ctx.endpoints[target],
    { ...cell, jobs: Math.min(2, cell.clients), seconds, ...(ctx.rate !== undefined ? { rate: ctx.rate } : {}) },
    ctx.logDir,
    String(index),
    onProgress,
  );
  let poolerCpu = Number.NaN;
  let poolerDied: string | undefined;
  if (target !== "direct") {
    const death = await ctx.poolers.checkAlive(target, `pgbench ${cellName(cell)} rep ${rep}`);
    if (death !== undefined) {
      poolerDied = death.exit;
      ctx.log(`${target} DIED during ${cellName(cell)} (${death.exit}); restarted\n${death.outputTail}`);
    } else if (pid !== undefined) {
      poolerCpu = cpuSeconds(pid) - cpuBefore;
    }
  }
  const user = steady.last.userSeconds - steady.first.userSeconds;
  const system = steady.last.systemSeconds - steady.first.systemSeconds;
  const perTx = (seconds: number) =>
    steady.transactions > 0 && poolerDied === undefined ? (seconds / steady.transactions) * 10_000 : Number.NaN;
  return {
    cell: cellName(cell),
    target,
    rep,
    startedAt,
    result,
    poolerCpuSeconds: poolerCpu,
    poolerCpuSecondsPer10kTxWholeRun: result.transactions > 0 ? (poolerCpu / result.transactions) * 10_000 : Number.NaN,
    poolerCpuSecondsPer10kTx: perTx(user + system),
    steadySeconds: steady.lastAt - steady.firstAt,
    poolerUserSecondsPer10kTx: perTx(user),
    poolerSystemSecondsPer10kTx: perTx(system),
    ...(poolerDied !== undefined ? { poolerDied } : {}),
  };
}

function line(run: CellRun): string {
  const r = run.result;
  const parts = [
    `${r.tps.toFixed(0)} tps`,
    `mean ${r.meanLatencyMs.toFixed(2)} ms`,
    `p99 ${r.p99LatencyMs.toFixed(2)} ms`,
    `failed ${r.failedTransactions}`,
  ];
  if (Number.isFinite(run.poolerCpuSecondsPer10kTx)) parts.push(`cpu ${run.poolerCpuSecondsPer10kTx.toFixed(2)} s/10k`);
  if (r.abortedClients > 0) parts.push(`ABORTED ${r.abortedClients} clients`);
  if (r.exitCode !== 0) parts.push(`exit ${r.exitCode}: ${r.errors[0] ?? ""}`);
  else if (!Number.isFinite(r.tps)) parts.push("NO SUMMARY from pgbench (see outputWithoutSummary in the JSON)");
  return parts.join(", ");
}

export interface CellSummary {
  readonly cell: string;
  readonly target: Target;
  readonly runs: number;
  readonly tps: number;
  readonly tpsSamples: readonly number[];
  readonly meanLatencyMs: number;
  readonly p99LatencyMs: number;
  readonly failedTransactions: number;
  readonly abortedClients: number;
  readonly poolerCpuSecondsPer10kTx: number;
  readonly poolerUserSecondsPer10kTx: number;
  readonly poolerSystemSecondsPer10kTx: number;
  readonly poolerDeaths: number;
  /** Runs where pgbench did not exit 0 (a client aborted, or it could not connect) or printed no TPS. */
  readonly failedRuns: number;
}

/** Per cell and target: medians of TPS, mean latency, p99 and CPU; sums of failures. */
export function summarize(cells: readonly Cell[], runs: readonly CellRun[]): CellSummary[] {
  const out: CellSummary[] = [];
  for (const cell of cells) {
    for (const target of targetsFor(cell)) {
      const mine = runs.filter((r) => r.cell === cellName(cell) && r.target === target);
      if (mine.length === 0) continue;
      out.push({
        cell: cellName(cell),
        target,
        runs: mine.length,
        tps: median(mine.map((r) => r.result.tps)),
        tpsSamples: mine.map((r) => r.result.tps),
        meanLatencyMs: median(mine.map((r) => r.result.meanLatencyMs)),
        p99LatencyMs: median(mine.map((r) => r.result.p99LatencyMs)),
        failedTransactions: mine.reduce((n, r) => n + r.result.failedTransactions, 0),
        abortedClients: mine.reduce((n, r) => n + r.result.abortedClients, 0),
        poolerCpuSecondsPer10kTx: median(mine.map((r) => r.poolerCpuSecondsPer10kTx)),
        poolerUserSecondsPer10kTx: median(mine.map((r) => r.poolerUserSecondsPer10kTx)),
        poolerSystemSecondsPer10kTx: median(mine.map((r) => r.poolerSystemSecondsPer10kTx)),
        poolerDeaths: mine.filter((r) => r.poolerDied !== undefined).length,
        failedRuns: mine.filter((r) => r.result.exitCode !== 0 || !Number.isFinite(r.result.tps)).length,
      });
    }
  }
  return out;
}
