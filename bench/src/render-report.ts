/**
 * The whole Markdown report from a BenchReport: what main.ts prints at the end of a run, and what
 * `pnpm bench -- --report bench/results/<file>.json` prints again from a saved run.
 */
import type { RateResult } from "./connection-rate.js";
import type { FdLimit } from "./fd-limit.js";
import type { IdleResult } from "./idle-clients.js";
import type { CellRun, CellSummary } from "./pgbench-matrix.js";
import { PER_PROCESS_KEYS } from "./pooler-config.js";
import type { PoolerDeath } from "./pooler-set.js";
import {
  type CellRatios,
  cellRatios,
  deathsText,
  fixed,
  idleTable,
  pgbenchTable,
  type RateSummary,
  rateTable,
  ratiosSummary,
  type ThroughputSummary,
  throughputTable,
} from "./report.js";
import { median } from "./stats.js";
import type { ThroughputResult } from "./throughput.js";

export interface BenchReport {
  readonly startedAt: string;
  minutes?: number;
  readonly options: {
    readonly size: string;
    readonly reps: number;
    readonly seconds: number;
    readonly scaleFactor: number;
    readonly rateLogins: number;
    readonly rateReps: number;
    readonly bulkRows: number;
    readonly bulkReps: number;
    readonly workers: number;
    readonly rate?: number;
  };
  readonly machine: {
    readonly cpu?: string;
    readonly cores: number;
    readonly memoryBytes: number;
    readonly kernel: string;
    readonly fd: FdLimit;
  };
  readonly versions: {
    readonly postgres: string;
    readonly pgbench: string;
    readonly node: string;
    readonly pgmux: string;
    readonly commit: string;
    readonly pgbouncer: string;
    readonly pgbouncerInstalled?: boolean;
  };
  readonly maxClientConn?: number;
  /** The generated pgbouncer.ini (the pgbouncer copy). */
  readonly ini: string;
  readonly iniDifferingKeys: readonly string[];
  readonly workerCount?: number;
  /** pgmux builds loaded by the starts of the main pair, in order (see poolers.ts pgmuxBuild). */
  pgmuxBuilds?: string[];
  readonly idleCapNote?: string;
  pgbench?: { runs: CellRun[]; summaries: CellSummary[]; ratios: CellRatios[] };
  throughput?: { results: ThroughputResult[]; summaries: ThroughputSummary[] };
  connectionRate?: { results: RateResult[]; summaries: RateSummary[]; trustIni: string };
  idleClients?: IdleResult[];
  poolerDeaths?: PoolerDeath[];
  failures?: { section: string; error: string }[];
}

export function renderHeader(r: BenchReport): string {
  const { machine: m, versions: v, options: o } = r;
  const maxClientConn = r.maxClientConn ?? /^max_client_conn = (\d+)$/m.exec(r.ini)?.[1] ?? "?";
  const expected = r.iniDifferingKeys.every((k) => (PER_PROCESS_KEYS as readonly string[]).includes(k));
  return [
    `## pgmux benchmark: ${o.size} run, ${r.startedAt}`,
    "",
    `- Machine: ${m.cpu ?? "unknown CPU"}, ${m.cores} cores, ${fixed(m.memoryBytes / 2 ** 30, 1)} GiB RAM, Linux ${m.kernel}; ` +
      `open-file limit ${m.fd.limit}${m.fd.problem ? ` (could not raise it: ${m.fd.problem})` : ""}.`,
    `- Software: PostgreSQL ${v.postgres}, ${v.pgbench}, ${v.pgbouncer}${v.pgbouncerInstalled ? " (installed by this run)" : ""}, ` +
      `pgmux ${v.pgmux} (commit ${v.commit}) on Node ${v.node}.`,
    `- PostgreSQL: throwaway cluster (fsync off, shared_buffers 256MB, max_connections 700), \`pgbench -i -s ${o.scaleFactor}\`.`,
    "- Poolers: pool_mode transaction, default_pool_size 20, auth_type scram-sha-256 (userlist.txt: the superuser's plaintext " +
      `password), max_client_conn ${maxClientConn}, log_connections/log_disconnections 0. Both run from the same generated ` +
      `pgbouncer.ini: the two copies differ only in ${r.iniDifferingKeys.join(", ")}${expected ? "" : " (UNEXPECTED)"}.`,
    ...buildLine(r.pgmuxBuilds),
  ].join("\n");
}

function buildLine(builds: readonly string[] | undefined): string[] {
  if (builds === undefined || builds.length === 0) return [];
  const distinct = [...new Set(builds)];
  if (distinct.length === 1) return [`- pgmux build: newest dist file ${distinct[0]}, the same at every pgmux start.`];
  return [
    `- WARNING: the workspace was rebuilt during the run; pgmux starts loaded builds ${builds.join(" → ")} ` +
      "(newest dist file). Figures measured after a restart come from the newer build.",
  ];
}

export function renderReport(r: BenchReport, jsonPath?: string): string {
  const o = r.options;
  const workers = r.workerCount ?? o.workers;
  const sections = [renderHeader(r)];
  if (r.pgbench) {
    const { runs, summaries } = r.pgbench;
    sections.push(
      [
        "### pgbench",
        "",
        `Each cell: \`pgbench -n -b <script> -M <mode> -c <clients> -j 2 -T ${o.seconds}${o.rate !== undefined ? ` -R ${o.rate}` : ""} -P 1 --log\` (-j 1 for 1 client), ` +
          `${o.reps} repetition(s), runs interleaved direct → PgBouncer → pgmux. TPS is pgbench's (without initial connection ` +
          "time), median over repetitions; mean and p99 latency come from pgbench's per-transaction log of every transaction " +
          "(median over repetitions); failed transactions are summed (+Nac: aborted clients, +Nfr: runs that failed); pooler CPU is " +
          "utime+stime of the pooler process (/proc/<pid>/stat) between pgbench's first and last `-P 1` progress reports (steady " +
          "state: logins, measured under Connection rate, are left out) per 10,000 transactions those reports count, median over " +
          "repetitions (the whole-run figure is in the JSON). d = direct, B = PgBouncer, m = pgmux.",
        "",
        pgbenchTable(summaries),
        "",
        ratiosSummary(cellRatios(summaries)),
        ...systemShareText(summaries),
        ...failedRunsText(runs),
      ].join("\n"),
    );
  }
  if (r.throughput) {
    sections.push(
      [
        "### Bulk reads",
        "",
        `\`COPY (SELECT repeat('x', 1000) FROM generate_series(1, ${o.bulkRows})) TO STDOUT\` and the same SELECT, read by a ` +
          `raw-socket client that frames and discards the stream; ${o.bulkReps} repetition(s) interleaved, median MB/s (10^6 wire ` +
          "bytes per second, Query to ReadyForQuery). Pooler peak RSS is VmHWM after a reset (clear_refs) just before the query; " +
          "the poolers were restarted after the pgbench cells.",
        "",
        throughputTable(r.throughput.summaries),
      ].join("\n"),
    );
  }
  if (r.connectionRate) {
    sections.push(
      [
        "### Connection rate",
        "",
        `${o.rateLogins} logins per target and repetition (${o.rateReps}, interleaved), 32 at a time from ${workers} client ` +
          "processes: connect, StartupMessage, authentication, first ReadyForQuery, Terminate. trust uses a second ini pair " +
          "(auth_type trust, otherwise identical). Direct PostgreSQL forks a backend per login. The client caches SCRAM keys " +
          "per salt; the last column counts the PBKDF2 derivations it still had to run (a server that picks a new salt per " +
          "login costs the client as much as itself, on the same cores).",
        "",
        rateTable(r.connectionRate.summaries),
      ].join("\n"),
    );
  }
  if (r.idleClients) {
    const steps = [...new Set(r.idleClients.flatMap((i) => i.steps.map((s) => s.clients)))];
    sections.push(
      [
        "### Idle clients",
        "",
        `Clients that completed SCRAM login and stay idle, opened in steps (${steps.join(", ")}; 64 logins in flight) from ` +
          `${workers} client processes on raw sockets. RSS is VmRSS (/proc/<pid>/status) of a freshly started pooler, 2 s ` +
          "after each step; per client = growth over the pooler's RSS before the first client, divided by the clients held. " +
          `A sample of held clients then runs SELECT 1 through the pooler.${r.idleCapNote ?? ""}`,
        "",
        idleTable(r.idleClients),
      ].join("\n"),
    );
  }
  sections.push(
    [
      "### Pooler processes",
      "",
      deathsText(r.poolerDeaths ?? []),
      ...(r.failures ?? []).map((f) => `- ${f.section} did not finish: ${f.error}`),
    ].join("\n"),
  );
  const tail = [
    jsonPath ? `Raw numbers: \`${jsonPath}\`.` : "",
    r.minutes !== undefined ? `Run time ${fixed(r.minutes, 1)} min.` : "",
  ].join(" ");
  if (tail.trim() !== "") sections.push(tail.trim());
  return sections.join("\n\n");
}

/** How much of each pooler's steady-state CPU went to the kernel (socket system calls), median over cells. */
function systemShareText(summaries: readonly CellSummary[]): string[] {
  const share = (target: "pgbouncer" | "pgmux") => {
    const shares = summaries
      .filter((s) => s.target === target && typeof s.poolerSystemSecondsPer10kTx === "number")
      .map((s) => s.poolerSystemSecondsPer10kTx / s.poolerCpuSecondsPer10kTx);
    return median(shares);
  };
  const b = share("pgbouncer");
  const m = share("pgmux");
  if (!Number.isFinite(b) && !Number.isFinite(m)) return [];
  return [
    "",
    `Share of the pooler's CPU spent in the kernel (system time: socket reads and writes), median over cells: ` +
      `PgBouncer ${fixed(b * 100, 0)}%, pgmux ${fixed(m * 100, 0)}%.`,
  ];
}

/** Runs where pgbench did not exit 0 or printed no result, with its first error lines. */
function failedRunsText(runs: readonly CellRun[]): string[] {
  const failed = runs.filter((r) => r.result.exitCode !== 0 || !(typeof r.result.tps === "number" && r.result.tps > 0));
  if (failed.length === 0) return [];
  return [
    "",
    "Runs where pgbench did not exit 0 or printed no result:",
    "",
    ...failed.map(
      (r) =>
        `- ${r.cell} ${r.target} rep ${r.rep}: exit ${r.result.exitCode}, ${r.result.abortedClients} aborted clients; ` +
        `${r.result.errors.slice(0, 2).join(" / ") || r.result.outputWithoutSummary?.trim().split("\n").slice(-2).join(" / ") || "no output"}`,
    ),
  ];
}
