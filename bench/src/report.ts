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

export function fixed(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(" | ")} |`, `|${" --- |".repeat(header.length)}`];
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  return lines.join("\n");
}

export function pgbenchTable(summaries: readonly CellSummary[]): string {
  const rows = summaries.map((s) => {
    const [script, mode, clients] = s.cell.split("/");
    const failures = s.failedTransactions + (s.abortedClients > 0 ? ` (+${s.abortedClients} aborted clients)` : "");
    return [
      script!,
      mode!,
      clients!,
      LABEL[s.target]!,
      fixed(s.tps, 0),
      fixed(s.meanLatencyMs, 2),
      fixed(s.p99LatencyMs, 2),
      String(failures) + (s.failedRuns > 0 ? `, ${s.failedRuns} failed runs` : ""),
      fixed(s.poolerCpuSecondsPer10kTx, 2),
    ];
  });
  return table(
    [
      "script",
      "-M",
      "clients",
      "target",
      "TPS (median)",
      "mean latency ms",
      "p99 ms",
      "failed tx",
      "pooler CPU s / 10k tx",
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

export function cellRatios(summaries: readonly CellSummary[]): CellRatios[] {
  const cells = [...new Set(summaries.map((s) => s.cell))];
  return cells.map((cell) => {
    const of = (t: Target) => summaries.find((s) => s.cell === cell && s.target === t);
    const m = of("pgmux");
    const b = of("pgbouncer");
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

export function ratiosTable(ratios: readonly CellRatios[]): string {
  return table(
    ["cell", "TPS pgmux/PgBouncer", "TPS pgmux/direct", "p99 pgmux/PgBouncer", "CPU per tx pgmux/PgBouncer"],
    ratios.map((r) => [
      r.cell,
      fixed(r.tpsVsPgbouncer),
      fixed(r.tpsVsDirect),
      fixed(r.p99VsPgbouncer),
      fixed(r.cpuVsPgbouncer),
    ]),
  );
}

export function idleTable(results: readonly IdleResult[]): string {
  const rows = results.flatMap((r) =>
    r.steps.map((s) => [
      LABEL[r.target]!,
      String(s.clients),
      String(s.opened),
      String(s.failed),
      fixed(r.baselineRssKb / 1024, 1),
      fixed(s.rssKb / 1024, 1),
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
      fixed(s.poolerRssBeforeKb / 1024, 1),
      fixed(s.poolerPeakRssKb / 1024, 1),
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
