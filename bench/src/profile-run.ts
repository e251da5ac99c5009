/**
 * `pnpm bench -- --profile`: pgmux alone, started with `node --cpu-prof`, under a pgbench load (select-only
 * over the simple protocol, then TPC-B-like over the extended protocol, 50 clients each), stopped with
 * SIGTERM so that V8 writes the profile; then the top 20 functions by self time.
 */
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { BenchEnvironment } from "./bench-environment.js";
import type { ChildProcesses } from "./child-processes.js";
import { readProfile, summarizeProfile } from "./cpu-profile.js";
import { runPgbench } from "./pgbench.js";
import type { Cell } from "./pgbench-matrix.js";
import { PoolerSet } from "./pooler-set.js";
import { cpuTimes } from "./proc-stats.js";
import { fixed, RESULTS_DIR } from "./report.js";

const LOAD: readonly Cell[] = [
  { script: "select-only", mode: "simple", clients: 50 },
  { script: "tpcb-like", mode: "extended", clients: 50 },
];

export async function runProfile(
  children: ChildProcesses,
  env: BenchEnvironment,
  seconds: number,
  startedAt: Date,
  repoRoot: string,
  log: (line: string) => void,
): Promise<string> {
  const inis = await env.writeInis("scram-sha-256", 2000);
  const profileDir = join(env.workDir, "cpu-profile");
  mkdirSync(profileDir, { recursive: true });
  const poolers = new PoolerSet(
    children,
    inis,
    { pgbouncerPath: "", osUser: env.osUser, nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] },
    ["pgmux"],
  );
  await poolers.start();
  const pid = poolers.get("pgmux").pid;
  const endpoint = env.via(inis.pgmux.port);
  const cpuBefore = cpuTimes(pid);
  const wallBefore = performance.now();
  for (const [i, cell] of LOAD.entries()) {
    if (cell.script === "tpcb-like") {
      await env.cluster.psql("VACUUM pgbench_branches; VACUUM pgbench_tellers; TRUNCATE pgbench_history;", {
        database: endpoint.database,
      });
    }
    log(`profiling: pgbench -b ${cell.script} -M ${cell.mode} -c ${cell.clients} -j 2 -T ${seconds} through pgmux`);
    const r = await runPgbench(children, env.binDir, endpoint, { ...cell, jobs: 2, seconds }, env.workDir, `p${i}`);
    log(`  ${fixed(r.tps, 0)} tps, p99 ${fixed(r.p99LatencyMs)} ms, failed ${r.failedTransactions}`);
  }
  const cpuAfter = cpuTimes(pid);
  const wallSeconds = (performance.now() - wallBefore) / 1000;
  const death = await poolers.checkAlive("pgmux", "the profiled load");
  if (death !== undefined) throw new Error(`pgmux died under the profiled load (${death.exit})\n${death.outputTail}`);
  await poolers.stop();

  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`pgmux wrote no .cpuprofile into ${profileDir} (did it exit cleanly?)`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const kept = join(
    RESULTS_DIR,
    `${startedAt.toISOString().replace(/\..*$/, "").replaceAll(":", "-")}-pgmux.cpuprofile`,
  );
  copyFileSync(join(profileDir, file), kept);

  const summary = summarizeProfile(readProfile(kept), repoRoot, 20);
  const lines = [
    `## pgmux CPU profile (${new Date().toISOString()})`,
    "",
    `Load: ${LOAD.map((c) => `${c.script} -M ${c.mode} -c ${c.clients}`).join(", then ")}, ${seconds} s each. ` +
      `Sampled ${fixed(summary.totalMs / 1000, 1)} s: busy ${fixed(summary.busyMs / 1000, 1)} s, idle ${fixed(summary.idleMs / 1000, 1)} s. ` +
      `Profile: ${kept} (open it in Chrome DevTools or VS Code).`,
    "",
    `pgmux's own CPU over the load (/proc/<pid>/stat): user ${fixed(cpuAfter.userSeconds - cpuBefore.userSeconds, 1)} s, ` +
      `system ${fixed(cpuAfter.systemSeconds - cpuBefore.systemSeconds, 1)} s in ${fixed(wallSeconds, 1)} s of wall time. ` +
      "V8 samples on a wall-clock timer: time the thread spent descheduled (other processes on the same cores) is " +
      "charged to whatever it was doing when it stopped, which is most often a system call. Where the sampled busy time " +
      "is well above user + system, read the shares below as wall time, not CPU time.",
    "",
    "| # | function | file:line | self ms | % of busy |",
    "| --- | --- | --- | --- | --- |",
    ...summary.top.map(
      (t, i) => `| ${i + 1} | ${t.functionName} | ${t.location} | ${fixed(t.selfMs, 1)} | ${fixed(t.percent, 1)} |`,
    ),
    "",
    "(native) writeBuffer / writev are the socket write system calls: on loopback the kernel runs the receiver's TCP " +
      "processing inside them, so their share says how many writes pgmux makes as much as how many bytes.",
    "",
    "Self time by file:",
    "",
    "| file | self ms | % of busy |",
    "| --- | --- | --- |",
    ...summary.byFile.slice(0, 10).map((f) => `| ${f.file} | ${fixed(f.selfMs, 1)} | ${fixed(f.percent, 1)} |`),
  ];
  return lines.join("\n");
}
