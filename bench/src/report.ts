/**
 * The run's report: Markdown tables on stdout (the README's Performance section takes them verbatim) and
 * every measurement as JSON under bench/results/, named by the run's start time.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RateResult } from "./connection-rate.js";
import type { IdleResult } from "./idle-clients.js";
import type { CellSummary, Target } from "./pgbench-matrix.js";
import type { PoolerDeath } from "./pooler-set.js";
import { median, ratio } from "./stats.js";
import type { ThroughputResult } from "./throughput.js";

export const RESULTS_DIR = fileURLToPath(new URL("../results/", import.meta.url));

const LABEL: Readonly<Record<string, string>> = { direct: "direct", pgbouncer: "PgBouncer", pgmux: "pgmux" };

/** JSON stores NaN as null: both print as "–". */
export function fixed(value: number | null, digits = 2): string {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

/** KiB (or null, NaN from JSON) as MiB with one decimal. */
function mib(kb: number | null): string {
  return typeof kb === "number" ? fixed(kb / 1024, 1) : "–";
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(" | ")} |`, `|${" --- |".repeat(header.length)}`];
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  return lines.join("\n");
}

/** One row per cell: the three targets side by side, with pgmux's TPS ratios. */
export function pgbenchTable(summaries: readonly CellSummary[]): string {
  const cells = [...new Set(summaries.map((s) => s.cell))];
  const rows = cells.map((cell) => {
    const of = (t: Target) => summaries.find((s) => s.cell === cell && s.target === t);
    const d = of("direct");
    const b = pgbouncerFor(summaries, cell);
    const m = of("pgmux");
    const three = (pick: (s: CellSummary) => string) => [d, b, m].map((s) => (s ? pick(s) : "–")).join(" / ");
    const failures = (s: CellSummary) =>
      `${s.failedTransactions}${s.abortedClients > 0 ? `+${s.abortedClients}ac` : ""}${s.failedRuns > 0 ? `+${s.failedRuns}fr` : ""}`;
    return [
      isPrepared(cell) ? `${cell} (B: -M extended)` : cell,
      fixed(d?.tps ?? Number.NaN, 0),
      fixed(b?.tps ?? Number.NaN, 0),
      fixed(m?.tps ?? Number.NaN, 0),
      fixed(ratio(m?.tps ?? Number.NaN, b?.tps ?? Number.NaN)),
      fixed(ratio(m?.tps ?? Number.NaN, d?.tps ?? Number.NaN)),
      three((s) => fixed(s.meanLatencyMs)),
      three((s) => fixed(s.p99LatencyMs)),
      three(failures),
      [b, m].map((s) => (s ? fixed(s.poolerCpuSecondsPer10kTx) : "–")).join(" / "),
    ];
  });
  return table(
    [
      "script/-M/clients",
      "TPS direct",
      "TPS PgBouncer",
      "TPS pgmux",
      "pgmux/PgBouncer",
      "pgmux/direct",
      "mean ms (d / B / m)",
      "p99 ms (d / B / m)",
      "failed tx (d / B / m)",
      "CPU s/10k tx (B / m)",
    ],
    rows,
  );
}

export interface CellRatios {
  readonly cell: string;
  readonly tpsVsPgbouncer: number;
  readonly tpsVsDirect: number;
  readonly p99VsPgbouncer: number;
  readonly cpuVsPgbouncer: number;
}

/**
 * PgBouncer's figures to set against a cell: its own, or for a -M prepared cell (which PgBouncer 1.18 cannot
 * run in transaction mode) those of its -M extended cell with the same script and clients — the issue's
 * target compares exactly these.
 */
function pgbouncerFor(summaries: readonly CellSummary[], cell: string): CellSummary | undefined {
  const name = isPrepared(cell) ? cell.replace("/prepared/", "/extended/") : cell;
  return summaries.find((s) => s.cell === name && s.target === "pgbouncer");
}

function isPrepared(cell: string): boolean {
  return cell.includes("/prepared/");
}

export function cellRatios(summaries: readonly CellSummary[]): CellRatios[] {
  const cells = [...new Set(summaries.map((s) => s.cell))];
  return cells.map((cell) => {
    const of = (t: Target) => summaries.find((s) => s.cell === cell && s.target === t);
    const m = of("pgmux");
    const b = pgbouncerFor(summaries, cell);
    const d = of("direct");
    return {
      cell,
      tpsVsPgbouncer: ratio(m?.tps ?? Number.NaN, b?.tps ?? Number.NaN),
      tpsVsDirect: ratio(m?.tps ?? Number.NaN, d?.tps ?? Number.NaN),
      p99VsPgbouncer: ratio(m?.p99LatencyMs ?? Number.NaN, b?.p99LatencyMs ?? Number.NaN),
      cpuVsPgbouncer: ratio(m?.poolerCpuSecondsPer10kTx ?? Number.NaN, b?.poolerCpuSecondsPer10kTx ?? Number.NaN),
    };
  });
}

/**
 * The ratios over all cells: geometric means, and how many cells pgmux leads PgBouncer in; -M prepared
 * cells (against PgBouncer's -M extended) get a line of their own.
 */
export function ratiosSummary(all: readonly CellRatios[]): string {
  const geo = (values: readonly number[]) => {
    const ok = values.filter((v) => typeof v === "number" && Number.isFinite(v) && v > 0);
    return ok.length === 0 ? Number.NaN : Math.exp(ok.reduce((a, v) => a + Math.log(v), 0) / ok.length);
  };
  const prepared = all.filter((r) => isPrepared(r.cell));
  const ratios = all.filter((r) => !isPrepared(r.cell));
  const preparedLine =
    prepared.length === 0
      ? ""
      : ` -M prepared through pgmux over PgBouncer's -M extended (target ≥ 1.1): ${fixed(geo(prepared.map((r) => r.tpsVsPgbouncer)))} over ${prepared.length} cells.`;
  const tpsB = ratios.map((r) => r.tpsVsPgbouncer);
  const ahead = tpsB.filter((v) => typeof v === "number" && v >= 1).length;
  return (
    `Over ${ratios.length} cells (geometric means of the per-cell ratios): TPS pgmux/PgBouncer ${fixed(geo(tpsB))} ` +
    `(pgmux at or above PgBouncer in ${ahead} of ${ratios.length} cells), TPS pgmux/direct ${fixed(geo(ratios.map((r) => r.tpsVsDirect)))}, ` +
    `p99 pgmux/PgBouncer ${fixed(geo(ratios.map((r) => r.p99VsPgbouncer)))}, ` +
    `pooler CPU per transaction pgmux/PgBouncer ${fixed(geo(ratios.map((r) => r.cpuVsPgbouncer)))}.` +
    preparedLine
  );
}

export function idleTable(results: readonly IdleResult[]): string {
  const rows = results.flatMap((r) =>
    r.steps.map((s) => [
      LABEL[r.target]!,
      String(s.clients),
      String(s.opened),
      String(s.failed),
      mib(r.baselineRssKb),
      mib(s.rssKb),
      fixed(s.rssPerClientKb, 2),
      fixed(s.loginsPerSecond, 0),
      `${s.checkedOk}/${s.checkedOk + s.checkedFailed}`,
    ]),
  );
  return table(
    [
      "pooler",
      "idle clients",
      "held",
      "failed logins",
      "RSS before MiB",
      "RSS MiB",
      "RSS per client KiB",
      "SCRAM logins/s",
      "SELECT 1 sample ok",
    ],
    rows,
  );
}

export interface RateSummary {
  readonly target: string;
  readonly auth: string;
  readonly perSecond: number;
  readonly poolerCpuSecondsPer1k: number;
  readonly failed: number;
  readonly clientDerivations: number;
  readonly reps: number;
}

export function summarizeRates(results: readonly RateResult[]): RateSummary[] {
  const keys = [...new Set(results.map((r) => `${r.auth}\0${r.target}`))];
  return keys.map((key) => {
    const mine = results.filter((r) => `${r.auth}\0${r.target}` === key);
    return {
      target: mine[0]!.target,
      auth: mine[0]!.auth,
      perSecond: median(mine.map((r) => r.perSecond)),
      poolerCpuSecondsPer1k: median(mine.map((r) => r.poolerCpuSecondsPer1k)),
      failed: mine.reduce((n, r) => n + r.failed, 0),
      clientDerivations: mine.reduce((n, r) => n + r.clientDerivations, 0),
      reps: mine.length,
    };
  });
}

export function rateTable(summaries: readonly RateSummary[]): string {
  return table(
    [
      "target",
      "client auth",
      "new connections/s (median)",
      "pooler CPU s / 1k logins",
      "failed",
      "client-side PBKDF2 runs",
    ],
    summaries.map((s) => [
      LABEL[s.target] ?? s.target,
      s.auth,
      fixed(s.perSecond, 0),
      fixed(s.poolerCpuSecondsPer1k, 3),
      String(s.failed),
      String(s.clientDerivations),
    ]),
  );
}

export interface ThroughputSummary {
  readonly target: string;
  readonly kind: string;
  readonly megabytesPerSecond: number;
  readonly megabytes: number;
  readonly poolerRssBeforeKb: number;
  readonly poolerPeakRssKb: number;
  readonly errors: readonly string[];
}

export function summarizeThroughput(results: readonly ThroughputResult[]): ThroughputSummary[] {
  const keys = [...new Set(results.map((r) => `${r.kind}\0${r.target}`))];
  return keys.map((key) => {
    const mine = results.filter((r) => `${r.kind}\0${r.target}` === key);
    const ok = mine.filter((r) => r.error === undefined);
    return {
      target: mine[0]!.target,
      kind: mine[0]!.kind,
      megabytesPerSecond: median(ok.map((r) => r.megabytesPerSecond)),
      megabytes: median(ok.map((r) => r.bytes / 1e6)),
      poolerRssBeforeKb: median(mine.map((r) => r.poolerRssBeforeKb)),
      poolerPeakRssKb: Math.max(...mine.map((r) => r.poolerPeakRssKb)),
      errors: mine.flatMap((r) => (r.error !== undefined ? [r.error] : [])),
    };
  });
}

export function throughputTable(summaries: readonly ThroughputSummary[]): string {
  return table(
    ["query", "target", "MB received", "MB/s (median)", "pooler RSS before MiB", "pooler peak RSS MiB", "errors"],
    summaries.map((s) => [
      s.kind === "copy" ? "COPY … TO STDOUT" : "SELECT",
      LABEL[s.target] ?? s.target,
      fixed(s.megabytes, 0),
      fixed(s.megabytesPerSecond, 0),
      mib(s.poolerRssBeforeKb),
      mib(s.poolerPeakRssKb),
      s.errors.length > 0 ? s.errors[0]!.slice(0, 80) : "0",
    ]),
  );
}

export function deathsText(deaths: readonly PoolerDeath[]): string {
  if (deaths.length === 0) return "No pooler process died during the run.";
  return deaths
    .map((d) => `- ${d.kind} died (${d.exit}) during ${d.during}:\n\n\`\`\`\n${d.outputTail}\n\`\`\``)
    .join("\n");
}

/** Writes the JSON report; returns its path. */
export function writeJsonReport(startedAt: Date, label: string, report: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = startedAt.toISOString().replace(/\..*$/, "").replaceAll(":", "-");
  const path = join(RESULTS_DIR, `${stamp}-${label}.json`);
  writeFileSync(
    path,
    `${JSON.stringify(report, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  return path;
}
