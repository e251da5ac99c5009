/**
 * Running pgbench (the binary next to the server's, so versions match) and reading what it reports: TPS,
 * transactions, failed transactions and aborted clients from its summary; mean and p99 latency from its
 * per-transaction logs (pgbench-log.ts).
 */
import { join } from "node:path";
import type { ChildProcesses } from "./child-processes.js";
import { readLatencyLogs } from "./pgbench-log.js";

export type PgbenchScript = "select-only" | "tpcb-like";
export type PgbenchMode = "simple" | "extended" | "prepared";

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export interface PgbenchRun {
  readonly script: PgbenchScript;
  readonly mode: PgbenchMode;
  readonly clients: number;
  readonly jobs: number;
  readonly seconds: number;
  /** pgbench -R: a fixed total rate (transactions per second) instead of as fast as possible. */
  readonly rate?: number;
}

export interface PgbenchResult {
  /** pgbench's "tps = … (without initial connection time)"; NaN when it printed none. */
  readonly tps: number;
  readonly transactions: number;
  readonly failedTransactions: number;
  readonly abortedClients: number;
  readonly meanLatencyMs: number;
  readonly p50LatencyMs: number;
  readonly p99LatencyMs: number;
  readonly maxLatencyMs: number;
  readonly initialConnectionMs: number;
  readonly exitCode: number | null;
  /** pgbench's error lines (first few), when it printed any. */
  readonly errors: readonly string[];
  /** What pgbench printed, when it printed no summary to read. */
  readonly outputWithoutSummary?: string;
}

const SETUP_MARGIN_MS = 120_000;
const PROGRESS = /^progress: ([\d.]+) s, ([\d.]+) tps/;

/** One `-P 1` progress report: seconds since the benchmark started (clients connected) and that second's TPS. */
export interface Progress {
  readonly seconds: number;
  readonly tps: number;
}

export function pgbenchArgs(endpoint: Endpoint, run: PgbenchRun, logPrefix?: string): string[] {
  return [
    ...["-h", endpoint.host, "-p", String(endpoint.port), "-U", endpoint.user],
    ...["-b", run.script, "-M", run.mode, "-c", String(run.clients), "-j", String(run.jobs)],
    ...["-T", String(run.seconds), "-n", "-P", "1"],
    ...(run.rate !== undefined ? ["-R", String(run.rate)] : []),
    ...(logPrefix ? ["--log", `--log-prefix=${logPrefix}`] : []),
    endpoint.database,
  ];
}

export function pgbenchEnv(endpoint: Endpoint): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("PG")) env[key] = value;
  return {
    ...env,
    PGPASSWORD: endpoint.password,
    PGSSLMODE: "disable",
    PGGSSENCMODE: "disable",
    PGCONNECT_TIMEOUT: "30",
  };
}

export async function runPgbench(
  children: ChildProcesses,
  binDir: string,
  endpoint: Endpoint,
  run: PgbenchRun,
  logDir: string,
  runId: string,
  onProgress?: (progress: Progress) => void,
): Promise<PgbenchResult> {
  const logPrefix = join(logDir, `pgbench-${runId}`);
  const args = pgbenchArgs(endpoint, run, logPrefix);
  const output = await capture(children, join(binDir, "pgbench"), args, {
    env: pgbenchEnv(endpoint),
    cwd: logDir,
    timeoutMs: run.seconds * 1000 + SETUP_MARGIN_MS,
    onStderrLine: (line) => {
      const m = PROGRESS.exec(line);
      if (m && onProgress) onProgress({ seconds: Number(m[1]), tps: Number(m[2]) });
    },
  });
  const latency = await readLatencyLogs(logPrefix);
  const summary = parseSummary(output.stdout);
  const errorLines = output.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("progress: ") && !l.startsWith("pgbench ("));
  return {
    tps: summary.tps,
    transactions: Number.isNaN(summary.transactions) ? latency.transactions : summary.transactions,
    failedTransactions: Math.max(Number.isNaN(summary.failed) ? 0 : summary.failed, latency.failed),
    abortedClients: errorLines.filter((l) => /client \d+ (?:script \d+ )?aborted/.test(l)).length,
    meanLatencyMs: latency.meanMs,
    p50LatencyMs: latency.p50Ms,
    p99LatencyMs: latency.p99Ms,
    maxLatencyMs: latency.maxMs,
    initialConnectionMs: summary.initialConnectionMs,
    exitCode: output.code,
    errors: [...new Set(errorLines)].slice(0, 5),
    ...(Number.isNaN(summary.tps) ? { outputWithoutSummary: `${output.stdout}\n${output.stderr}`.slice(-2000) } : {}),
  };
}

export interface PgbenchSummary {
  readonly tps: number;
  readonly transactions: number;
  readonly failed: number;
  readonly latencyAverageMs: number;
  readonly initialConnectionMs: number;
}

/** pgbench 15's summary lines; a missing line is NaN. */
export function parseSummary(stdout: string): PgbenchSummary {
  const num = (re: RegExp) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : Number.NaN;
  };
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: num(/^number of failed transactions: (\d+)/m),
    latencyAverageMs: num(/^latency average = ([\d.]+) ms/m),
    initialConnectionMs: num(/^initial connection time = ([\d.]+) ms/m),
  };
}

export interface Captured {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to the end with a deadline, keeping its output; never rejects for a non-zero exit. */
export async function capture(
  children: ChildProcesses,
  file: string,
  args: readonly string[],
  options: {
    env: NodeJS.ProcessEnv;
    cwd?: string;
    timeoutMs: number;
    /** Called with each whole stderr line as it arrives. */
    onStderrLine?: (line: string) => void;
  },
): Promise<Captured> {
  const child = children.spawn(file, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let partial = "";
  child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
  child.stderr?.on("data", (chunk: Buffer) => {
    err.push(chunk);
    if (options.onStderrLine === undefined) return;
    const lines = (partial + chunk.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) options.onStderrLine(line);
  });
  const failedToStart = new Promise<never>((_, reject) => {
    child.once("error", (error) => reject(new Error(`could not run ${file}: ${error.message}`)));
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  try {
    const exit = await Promise.race([children.exited(child), failedToStart]);
    // 'exit' may come before the pipes are drained.
    await Promise.all([streamClosed(child.stdout), streamClosed(child.stderr)]);
    return {
      code: exit.code,
      stdout: Buffer.concat(out).toString("utf8"),
      stderr: Buffer.concat(err).toString("utf8"),
    };
  } finally {
    clearTimeout(timer);
  }
}

function streamClosed(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (stream === null || (stream as { closed?: boolean }).closed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    setTimeout(resolve, 1000).unref();
  });
}
