/**
 * pgmux against direct PostgreSQL and PgBouncer, measured in one run on one machine and reported as ratios.
 *
 *   pnpm bench [-- --quick | --profile | --only LIST | --no-prepared | --report FILE | --help]
 *
 * A throwaway PostgreSQL (the test harness's PostgresCluster), `pgbench -i`, then Debian's pgbouncer
 * (installed if missing) and the pgmux CLI from the same generated pgbouncer.ini. Then:
 *   1. pgbench cells (select-only and TPC-B-like × simple and extended protocol × 1–500 clients), direct,
 *      PgBouncer and pgmux interleaved, repeated, summarized by medians (pgbench-matrix.ts);
 *   2. scale: 1 GB COPY and SELECT (throughput.ts), new connections per second with SCRAM and trust
 *      (connection-rate.ts), idle SCRAM clients up to 50k and the pooler's RSS per client (idle-clients.ts).
 * Progress goes to stderr; the Markdown report to stdout; every number to bench/results/<time>-<size>.json.
 */
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { BenchEnvironment } from "./bench-environment.js";
import { type BenchOptions, parseBenchOptions, type Section, USAGE } from "./bench-options.js";
import { ChildProcesses } from "./child-processes.js";
import { ClientWorkers } from "./client-workers.js";
import { measureConnectionRate, type RateResult } from "./connection-rate.js";
import { type FdLimit, raiseFdLimit } from "./fd-limit.js";
import { type IdleResult, measureIdleClients } from "./idle-clients.js";
import { LocalAddresses } from "./local-addresses.js";
import { runPgbench } from "./pgbench.js";
import { runMatrix, summarize, TARGETS, type Target } from "./pgbench-matrix.js";
import { ensurePgbouncer, type Pgbouncer } from "./pgbouncer-install.js";
import { type ClientAuthType, differingKeys } from "./pooler-config.js";
import { PoolerSet } from "./pooler-set.js";
import { runProfile } from "./profile-run.js";
import { type LoginTarget, ScramKeyCache } from "./raw-client.js";
import { type BenchReport, renderHeader, renderReport } from "./render-report.js";
import { cellRatios, fixed, summarizeRates, summarizeThroughput, writeJsonReport } from "./report.js";
import { type BulkKind, measureThroughput, type ThroughputResult } from "./throughput.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FD_LIMIT = 262_144;
/** Descriptors a pooler needs besides its clients' (servers, listeners, logs). */
const FD_MARGIN = 1000;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseBenchOptions(argv);
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  if (options.reportFile !== undefined) {
    const saved = JSON.parse(readFileSync(options.reportFile, "utf8")) as BenchReport;
    console.log(renderReport(saved, options.reportFile));
    return 0;
  }
  const startedAt = new Date();
  const children = new ChildProcesses();
  const fd = raiseFdLimit(FD_LIMIT);
  const pgbouncer = options.profile ? null : ensurePgbouncer(log);
  const env = await BenchEnvironment.start(children, options.scaleFactor, log);
  try {
    if (options.profile) {
      console.log(await runProfile(children, env, Math.max(options.seconds, 15), startedAt, REPO_ROOT, log));
      return 0;
    }
    await runBenchmark(children, env, pgbouncer!, options, startedAt, fd);
    return 0;
  } finally {
    await children.stopAll();
    await env.destroy();
    children.dispose();
  }
}

async function runBenchmark(
  children: ChildProcesses,
  env: BenchEnvironment,
  pgbouncer: Pgbouncer,
  options: BenchOptions,
  startedAt: Date,
  fd: FdLimit,
): Promise<void> {
  const has = (s: Section) => options.sections.has(s);
  // Each pooler holds one descriptor per idle client: steps beyond the open-file limit cannot be measured here.
  const idleCap = Math.floor((fd.limit - FD_MARGIN) / 1000) * 1000;
  const idleSteps = [...new Set(options.idleSteps.map((n) => Math.min(n, idleCap)))];
  const idleCapNote = options.idleSteps.some((n) => n > idleCap)
    ? ` Steps above ${idleCap} (${options.idleSteps.filter((n) => n > idleCap).join(", ")}) were capped to ${idleCap}: ` +
      `the open-file limit is ${fd.limit}${fd.problem ? ` and cannot be raised here (${fd.problem})` : ""}.`
    : "";
  // No worker may need more descriptors than the limit either.
  const workerCount = Math.max(options.workers, Math.ceil(Math.max(...idleSteps) / (fd.limit - FD_MARGIN)));
  const maxClientConn = Math.max(1000, ...(has("idle") ? idleSteps.map((n) => n + 1000) : []));
  const scramInis = await env.writeInis("scram-sha-256", maxClientConn);
  const ini = readFileSync(scramInis.pgbouncer.path, "utf8");
  const poolerOptions = { pgbouncerPath: pgbouncer.path, osUser: env.osUser };
  const poolers = new PoolerSet(children, scramInis, poolerOptions);
  await poolers.start();
  const endpoints: Record<Target, ReturnType<BenchEnvironment["via"]>> = {
    direct: env.direct,
    pgbouncer: env.via(scramInis.pgbouncer.port),
    pgmux: env.via(scramInis.pgmux.port),
  };

  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    options,
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      memoryBytes: totalmem(),
      kernel: release(),
      fd,
    },
    versions: { ...env.versions, pgbouncer: pgbouncer.version, pgbouncerInstalled: pgbouncer.installed },
    maxClientConn,
    ini,
    iniDifferingKeys: differingKeys(ini, readFileSync(scramInis.pgmux.path, "utf8")),
    workerCount,
    idleCapNote,
    poolerDeaths: [],
  };
  log(renderHeader(report));
  const failures: { section: Section; error: string }[] = [];
  // A section that fails is reported and the run goes on: a late failure must not lose a long run's results.
  const guarded = async (section: Section, body: () => Promise<void>) => {
    if (!has(section)) return;
    try {
      await body();
    } catch (error) {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`${section} FAILED: ${text}`);
      failures.push({ section, error: text.split("\n")[0]! });
    }
  };

  // Pools filled, JIT warm, caches hot: nothing measured yet.
  log("warming up: 2 s of select-only, 20 clients, through each target");
  for (const target of TARGETS) {
    await runPgbench(
      children,
      env.binDir,
      endpoints[target],
      { script: "select-only", mode: "simple", clients: 20, jobs: 2, seconds: 2 },
      env.workDir,
      `warmup-${target}`,
    );
  }

  await guarded("pgbench", async () => {
    const runsPlanned = options.reps * options.cells.length * 3;
    log(
      `pgbench: ${options.cells.length} cells × targets × ${options.reps} reps, ${options.seconds} s each ` +
        `(about ${Math.ceil((runsPlanned * (options.seconds + 2)) / 60)} min)`,
    );
    const matrix = {
      children,
      binDir: env.binDir,
      cluster: env.cluster,
      endpoints,
      poolers,
      logDir: env.workDir,
      log,
      ...(options.rate !== undefined ? { rate: options.rate } : {}),
    };
    const runs = await runMatrix(matrix, options.cells, options.reps, options.seconds);
    const summaries = summarize(options.cells, runs);
    report.pgbench = { runs, summaries, ratios: cellRatios(summaries) };
  });

  if (has("throughput") || has("rate") || has("idle")) {
    // Fresh pooler processes: the scale figures should not carry what the pgbench load left in memory.
    await poolers.restart();
    const addresses = new LocalAddresses();
    const keys = new ScramKeyCache(env.direct.password);
    const login = (target: Target): LoginTarget => endpoints[target];
    const pidOf = (target: Target) => (target === "direct" ? {} : { pid: poolers.get(target).pid });

    await guarded("throughput", async () => {
      const results: ThroughputResult[] = [];
      for (let rep = 1; rep <= options.bulkReps; rep++) {
        for (const kind of ["copy", "select"] as BulkKind[]) {
          for (const target of TARGETS) {
            const target_ = { name: target, login: login(target), ...pidOf(target) };
            const r = await measureThroughput(target_, kind, options.bulkRows, rep, keys);
            results.push(r);
            log(
              `bulk ${kind} ${target}: ${fixed(r.bytes / 1e6, 0)} MB in ${fixed(r.seconds, 2)} s = ` +
                `${fixed(r.megabytesPerSecond, 0)} MB/s, pooler peak RSS ${fixed(r.poolerPeakRssKb / 1024, 1)} MiB` +
                (r.error ? `; ERROR ${r.error}` : ""),
            );
            await deathCheck(poolers, target, `bulk ${kind}`);
          }
        }
      }
      report.throughput = { results, summaries: summarizeThroughput(results) };
    });

    const workers = ClientWorkers.start(children, workerCount);
    try {
      await guarded("rate", async () => {
        const trustInis = await env.writeInis("trust", maxClientConn);
        const trustPoolers = new PoolerSet(children, trustInis, poolerOptions);
        await trustPoolers.start();
        const results: RateResult[] = [];
        try {
          const plan: { name: Target; auth: ClientAuthType; login: LoginTarget; pid?: number }[] = [
            ...TARGETS.map((t) => ({ name: t, auth: "scram-sha-256" as const, login: login(t), ...pidOf(t) })),
            ...(["pgbouncer", "pgmux"] as const).map((t) => ({
              name: t,
              auth: "trust" as const,
              login: env.via(trustInis[t].port),
              pid: trustPoolers.get(t).pid,
            })),
          ];
          for (let rep = 1; rep <= options.rateReps; rep++) {
            for (const target of plan) {
              // pg_hba.conf admits 127.0.0.1 only: direct logins come from the default address.
              const from = target.name === "direct" ? null : addresses;
              const r = await measureConnectionRate(workers, target, options.rateLogins, rep, from);
              results.push(r);
              log(
                `connection rate ${target.auth} ${target.name}: ${r.ok}/${r.attempted} in ${fixed(r.seconds, 2)} s = ` +
                  `${fixed(r.perSecond, 0)}/s, pooler CPU ${fixed(r.poolerCpuSecondsPer1k, 3)} s/1k, ` +
                  `client PBKDF2 ${r.clientDerivations}${r.errors.length > 0 ? `; errors: ${r.errors.join(" | ")}` : ""}`,
              );
              const set = target.auth === "trust" ? trustPoolers : poolers;
              await deathCheck(set, target.name, `connection rate (${target.auth})`);
            }
          }
        } finally {
          await trustPoolers.stop();
          report.poolerDeaths?.push(...trustPoolers.deaths);
        }
        const trustIni = readFileSync(trustInis.pgbouncer.path, "utf8");
        report.connectionRate = { results, summaries: summarizeRates(results), trustIni };
      });

      await guarded("idle", async () => {
        await poolers.restart();
        const results: IdleResult[] = [];
        report.idleClients = results;
        for (const kind of ["pgbouncer", "pgmux"] as const) {
          results.push(await measureIdleClients(workers, poolers.get(kind), login(kind), idleSteps, addresses, log));
          await deathCheck(poolers, kind, "idle clients");
        }
      });
    } finally {
      await workers.stop();
    }
  }

  report.poolerDeaths?.push(...poolers.deaths);
  report.pgmuxBuilds = poolers.pgmuxBuilds;
  if (failures.length > 0) report.failures = failures;
  await poolers.stop();
  report.minutes = (Date.now() - startedAt.getTime()) / 60_000;
  const jsonPath = writeJsonReport(startedAt, options.size, report);
  console.log(renderReport(report, relative(REPO_ROOT, jsonPath)));
}

async function deathCheck(poolers: PoolerSet, target: string, during: string): Promise<void> {
  if (target !== "pgbouncer" && target !== "pgmux") return;
  const death = await poolers.checkAlive(target, during);
  if (death !== undefined) log(`${target} DIED during ${during} (${death.exit}); restarted\n${death.outputTail}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  },
);
