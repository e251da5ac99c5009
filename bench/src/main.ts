/**
 * pgmux against direct PostgreSQL and PgBouncer, measured in one run on one machine and reported as ratios.
 *
 *   pnpm bench [-- --quick | --profile | --only LIST | --prepared | --help]
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
import { type CellRun, runMatrix, summarize, TARGETS, type Target } from "./pgbench-matrix.js";
import { ensurePgbouncer, type Pgbouncer } from "./pgbouncer-install.js";
import { type ClientAuthType, differingKeys, PER_PROCESS_KEYS } from "./pooler-config.js";
import { type PoolerDeath, PoolerSet } from "./pooler-set.js";
import { runProfile } from "./profile-run.js";
import { type LoginTarget, ScramKeyCache } from "./raw-client.js";
import {
  cellRatios,
  deathsText,
  fixed,
  idleTable,
  pgbenchTable,
  rateTable,
  ratiosTable,
  summarizeRates,
  summarizeThroughput,
  throughputTable,
  writeJsonReport,
} from "./report.js";
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
  const startedAt = new Date();
  const children = new ChildProcesses();
  const fdLimit = raiseFdLimit(FD_LIMIT);
  const pgbouncer = options.profile ? null : ensurePgbouncer(log);
  const env = await BenchEnvironment.start(children, options.scaleFactor, log);
  try {
    if (options.profile) {
      console.log(await runProfile(children, env, Math.max(options.seconds, 15), startedAt, REPO_ROOT, log));
      return 0;
    }
    await runBenchmark(children, env, pgbouncer!, options, startedAt, fdLimit);
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
    ? ` Steps above ${idleCap} were capped to ${idleCap}: the open-file limit is ${fd.limit}` +
      `${fd.problem ? ` and cannot be raised here (${fd.problem})` : ""}.`
    : "";
  // No worker may need more descriptors than the limit either.
  const workerCount = Math.max(options.workers, Math.ceil(Math.max(...idleSteps) / (fd.limit - FD_MARGIN)));
  const maxClientConn = Math.max(1000, ...(has("idle") ? idleSteps.map((n) => n + 1000) : []));
  const scramInis = await env.writeInis("scram-sha-256", maxClientConn);
  const sameIni = differingKeys(
    readFileSync(scramInis.pgbouncer.path, "utf8"),
    readFileSync(scramInis.pgmux.path, "utf8"),
  );
  const poolerOptions = { pgbouncerPath: pgbouncer.path, osUser: env.osUser };
  const poolers = new PoolerSet(children, scramInis, poolerOptions);
  await poolers.start();
  const endpoints: Record<Target, ReturnType<BenchEnvironment["via"]>> = {
    direct: env.direct,
    pgbouncer: env.via(scramInis.pgbouncer.port),
    pgmux: env.via(scramInis.pgmux.port),
  };

  const header = [
    `## pgmux benchmark: ${options.size} run, ${startedAt.toISOString()}`,
    "",
    `- Machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${fixed(totalmem() / 2 ** 30, 1)} GiB RAM, Linux ${release()}; open-file limit ${fd.limit}${fd.problem ? ` (could not raise it: ${fd.problem})` : ""}.`,
    `- Software: PostgreSQL ${env.versions.postgres}, ${env.versions.pgbench}, ${pgbouncer.version}${pgbouncer.installed ? " (installed by this run)" : ""}, pgmux ${env.versions.pgmux} (commit ${env.versions.commit}) on Node ${env.versions.node}.`,
    `- PostgreSQL: throwaway cluster (fsync off, shared_buffers 256MB, max_connections 700), \`pgbench -i -s ${options.scaleFactor}\`.`,
    `- Poolers: pool_mode transaction, default_pool_size 20, auth_type scram-sha-256 (userlist.txt: the superuser's plaintext password), max_client_conn ${maxClientConn}, log_connections/log_disconnections 0. ` +
      `Both run from the same generated pgbouncer.ini: the two copies differ only in ${sameIni.join(", ")}` +
      `${sameIni.every((k) => (PER_PROCESS_KEYS as readonly string[]).includes(k)) ? "" : " (UNEXPECTED)"}.`,
  ];
  log(header.join("\n"));

  const report: Record<string, unknown> = {
    startedAt: startedAt.toISOString(),
    options: { ...options, sections: [...options.sections] },
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryBytes: totalmem(), kernel: release(), fd },
    versions: { ...env.versions, pgbouncer: pgbouncer.version },
    ini: readFileSync(scramInis.pgbouncer.path, "utf8"),
    iniDifferingKeys: sameIni,
  };
  const sections: string[] = [header.join("\n")];
  const otherDeaths: PoolerDeath[] = [];
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
    const runs: CellRun[] = await runMatrix(
      {
        children,
        binDir: env.binDir,
        cluster: env.cluster,
        endpoints,
        poolers,
        logDir: env.workDir,
        log,
      },
      options.cells,
      options.reps,
      options.seconds,
    );
    const summaries = summarize(options.cells, runs);
    const ratios = cellRatios(summaries);
    report.pgbench = { runs, summaries, ratios };
    sections.push(
      [
        "### pgbench",
        "",
        `Each cell: \`pgbench -n -b <script> -M <mode> -c <clients> -j 2 -T ${options.seconds} -P 1 --log\` (-j 1 for 1 client), ` +
          `${options.reps} repetition(s), runs interleaved direct → PgBouncer → pgmux. TPS is pgbench's (without initial connection time), ` +
          "median over repetitions; mean and p99 latency come from pgbench's per-transaction log of every transaction (median over repetitions); " +
          "failed transactions are summed; pooler CPU is utime+stime of the pooler process (/proc/<pid>/stat) between pgbench's first and last " +
          "`-P 1` progress reports (steady state: logins, measured under Connection rate, excluded) per 10,000 transactions those reports count " +
          "(median over repetitions; the whole-run figure is in the JSON).",
        "",
        pgbenchTable(summaries),
        "",
        "Ratios (pgmux over the other; TPS above 1 and p99/CPU below 1 favour pgmux):",
        "",
        ratiosTable(ratios),
        ...failedRunsText(runs),
      ].join("\n"),
    );
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
            const r = await measureThroughput(
              { name: target, login: login(target), ...pidOf(target) },
              kind,
              options.bulkRows,
              rep,
              keys,
            );
            results.push(r);
            log(
              `bulk ${kind} ${target}: ${fixed(r.bytes / 1e6, 0)} MB in ${fixed(r.seconds, 2)} s = ${fixed(r.megabytesPerSecond, 0)} MB/s, ` +
                `pooler peak RSS ${fixed(r.poolerPeakRssKb / 1024, 1)} MiB${r.error ? `; ERROR ${r.error}` : ""}`,
            );
            await deathCheck(poolers, target, `bulk ${kind}`);
          }
        }
      }
      const summaries = summarizeThroughput(results);
      report.throughput = { results, summaries };
      sections.push(
        [
          "### Bulk reads",
          "",
          `\`COPY (SELECT repeat('x', 1000) FROM generate_series(1, ${options.bulkRows})) TO STDOUT\` and the same SELECT, ` +
            `read by a raw-socket client that frames and discards the stream; ${options.bulkReps} repetition(s), median MB/s ` +
            "(10^6 wire bytes per second, Query to ReadyForQuery). Pooler peak RSS is VmHWM after a reset (clear_refs) just before the query.",
          "",
          throughputTable(summaries),
        ].join("\n"),
      );
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
                  `${fixed(r.perSecond, 0)}/s, pooler CPU ${fixed(r.poolerCpuSecondsPer1k, 3)} s/1k, client PBKDF2 ${r.clientDerivations}` +
                  (r.errors.length > 0 ? `; errors: ${r.errors.join(" | ")}` : ""),
              );
              if (target.name !== "direct") {
                await deathCheck(
                  target.auth === "trust" ? trustPoolers : poolers,
                  target.name,
                  `connection rate (${target.auth})`,
                );
              }
            }
          }
        } finally {
          await trustPoolers.stop();
          otherDeaths.push(...trustPoolers.deaths);
        }
        const summaries = summarizeRates(results);
        report.connectionRate = { results, summaries, trustIni: readFileSync(trustInis.pgbouncer.path, "utf8") };
        sections.push(
          [
            "### Connection rate",
            "",
            `${options.rateLogins} logins per target and repetition (${options.rateReps}), ${32} at a time from ${workerCount} client processes: ` +
              "connect, StartupMessage, authentication, first ReadyForQuery, Terminate. trust uses a second ini pair (auth_type trust, otherwise identical). " +
              "Direct PostgreSQL forks a backend per login. The client caches SCRAM keys per salt; the last column counts the PBKDF2 derivations the " +
              "client still had to run (a server that picks a new salt per login costs the client as much as itself, on the same two cores).",
            "",
            rateTable(summaries),
          ].join("\n"),
        );
      });

      await guarded("idle", async () => {
        await poolers.restart();
        const results: IdleResult[] = [];
        for (const kind of ["pgbouncer", "pgmux"] as const) {
          results.push(await measureIdleClients(workers, poolers.get(kind), login(kind), idleSteps, addresses, log));
          await deathCheck(poolers, kind, "idle clients");
        }
        report.idleClients = results;
        sections.push(
          [
            "### Idle clients",
            "",
            `Clients that completed SCRAM login and stay idle, opened in steps (${idleSteps.join(", ")}; 64 logins in flight) ` +
              `from ${workerCount} client processes on raw sockets. RSS from /proc/<pid>/status (VmRSS) of a freshly started pooler, ` +
              "2 s after each step; per client = growth over the pooler's RSS before the first client, divided by the clients held. " +
              `A sample of held clients then runs SELECT 1 through the pooler.${idleCapNote}`,
            "",
            idleTable(results),
          ].join("\n"),
        );
      });
    } finally {
      await workers.stop();
    }
  }

  const deaths = [...poolers.deaths, ...otherDeaths];
  report.poolerDeaths = deaths;
  if (failures.length > 0) report.failures = failures;
  sections.push(
    [
      "### Pooler processes",
      "",
      deathsText(deaths),
      ...failures.map((f) => `- ${f.section} did not finish: ${f.error}`),
    ].join("\n"),
  );
  await poolers.stop();
  const jsonPath = writeJsonReport(startedAt, options.size, report);
  sections.push(
    `Raw numbers: \`${jsonPath.slice(REPO_ROOT.length)}\`. Run time ${fixed((Date.now() - startedAt.getTime()) / 60_000, 1)} min.`,
  );
  console.log(sections.join("\n\n"));
}

/** Runs where pgbench did not exit 0, with its first error lines: a table cell alone would hide why. */
function failedRunsText(runs: readonly CellRun[]): string[] {
  const failed = runs.filter((r) => r.result.exitCode !== 0 || !Number.isFinite(r.result.tps));
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
