/**
 * Command-line flags of `pnpm bench` and what each run size means.
 *
 *   pnpm bench                        full run (20–40 minutes)
 *   pnpm bench -- --quick             a small version of everything, under 3 minutes
 *   pnpm bench -- --profile           pgmux under the V8 CPU profiler during a pgbench load; top 20 by self time
 *   pnpm bench -- --only LIST         run only some parts: section names and/or pgbench cell patterns
 *   pnpm bench -- --no-prepared       leave out the -M prepared cells (direct and pgmux; PgBouncer 1.18 cannot)
 *   pnpm bench -- --report FILE       print the Markdown report of a saved run again
 *   --reps N --duration S --scale-factor N --idle 1000,10000 --workers N --rate N   override the run size
 */
import { parseArgs } from "node:util";
import type { PgbenchMode, PgbenchScript } from "./pgbench.js";
import { type Cell, cellName } from "./pgbench-matrix.js";

export const SECTIONS = ["pgbench", "throughput", "rate", "idle"] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  readonly size: "full" | "quick";
  readonly profile: boolean;
  readonly sections: ReadonlySet<Section>;
  readonly cells: readonly Cell[];
  readonly reps: number;
  readonly seconds: number;
  /** pgbench -i -s. */
  readonly scaleFactor: number;
  readonly idleSteps: readonly number[];
  readonly rateLogins: number;
  readonly rateReps: number;
  readonly bulkRows: number;
  readonly bulkReps: number;
  readonly workers: number;
  /** --rate N: pgbench -R N for every cell (fixed load; compare CPU per transaction rather than TPS). */
  readonly rate?: number;
  /** --report FILE: print the Markdown report of a saved run (bench/results/*.json) and exit. */
  readonly reportFile?: string;
}

export const USAGE = `usage: pnpm bench [-- options]
  --quick                 a small version of every measurement (under 3 minutes)
  --profile               run pgmux under the V8 CPU profiler during a pgbench load, print the top 20 functions
  --only LIST             comma-separated: sections (${SECTIONS.join(", ")}, scale = throughput+rate+idle) and/or
                          pgbench cells as script/mode/clients with * wildcards (select/*/100, tpcb/extended/*)
  --no-prepared           leave out the -M prepared cells (direct and pgmux only: PgBouncer 1.18 cannot run
                          them in transaction mode; pgmux's are compared with PgBouncer's -M extended)
  --reps N                repetitions per pgbench cell (full 3, quick 1)
  --duration S            seconds per pgbench run (full 10, quick 3)
  --scale-factor N        pgbench -i -s (full 10, quick 1)
  --idle N,N,...          idle-client steps (full 1000,10000,50000, quick 1000)
  --workers N             client worker processes for the scale runs (default 2)
  --rate N                run every pgbench cell at a fixed N transactions/s (pgbench -R): on a busy machine,
                          pooler CPU per transaction at equal load is the figure to compare, not TPS
  --report FILE           print the Markdown report of a saved run (bench/results/<time>-<size>.json) and exit`;

const SCRIPTS: readonly PgbenchScript[] = ["select-only", "tpcb-like"];
const MODES: readonly PgbenchMode[] = ["simple", "extended"];
const FULL_CLIENTS = [1, 10, 50, 100, 500];

export function parseBenchOptions(argv: readonly string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== "--"),
    options: {
      quick: { type: "boolean" },
      profile: { type: "boolean" },
      "no-prepared": { type: "boolean" },
      only: { type: "string" },
      reps: { type: "string" },
      duration: { type: "string" },
      "scale-factor": { type: "string" },
      idle: { type: "string" },
      workers: { type: "string" },
      rate: { type: "string" },
      report: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const quick = values.quick === true;

  const prepared = values["no-prepared"] !== true;
  const modes: PgbenchMode[] = [...MODES, ...(prepared ? (["prepared"] as const) : [])];
  let cells: Cell[] = quick
    ? [
        { script: "select-only", mode: "simple", clients: 10 },
        { script: "select-only", mode: "simple", clients: 100 },
        { script: "select-only", mode: "extended", clients: 100 },
        { script: "tpcb-like", mode: "simple", clients: 10 },
        { script: "tpcb-like", mode: "simple", clients: 100 },
        ...(prepared ? [{ script: "select-only", mode: "prepared", clients: 100 } as const] : []),
      ]
    : SCRIPTS.flatMap((script) => modes.flatMap((mode) => FULL_CLIENTS.map((clients) => ({ script, mode, clients }))));

  let sections = new Set<Section>(SECTIONS);
  if (values.only !== undefined) {
    const tokens = values.only
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
    sections = new Set();
    const patterns: string[] = [];
    for (const token of tokens) {
      if (token === "scale") for (const s of ["throughput", "rate", "idle"] as const) sections.add(s);
      else if ((SECTIONS as readonly string[]).includes(token)) sections.add(token as Section);
      else patterns.push(token);
    }
    if (patterns.length > 0) {
      sections.add("pgbench");
      // Patterns may name cells outside the run size's own list (e.g. tpcb/extended/500 in a quick run).
      const all = SCRIPTS.flatMap((script) =>
        (["simple", "extended", "prepared"] as const).flatMap((mode) =>
          FULL_CLIENTS.map((clients) => ({ script, mode, clients })),
        ),
      );
      const pool = [...cells, ...all.filter((c) => !cells.some((k) => cellName(k) === cellName(c)))];
      cells = pool.filter((c) => patterns.some((p) => matches(p, cellName(c))));
      if (cells.length === 0) throw new Error(`--only: no pgbench cell matches ${patterns.join(", ")}`);
    }
  }

  return {
    size: quick ? "quick" : "full",
    profile: values.profile === true,
    sections,
    cells,
    reps: positive(values.reps, quick ? 1 : 3, "--reps"),
    seconds: positive(values.duration, quick ? 3 : 10, "--duration"),
    scaleFactor: positive(values["scale-factor"], quick ? 1 : 10, "--scale-factor"),
    idleSteps: values.idle
      ? values.idle.split(",").map((n) => positive(n, 0, "--idle"))
      : quick
        ? [1000]
        : [1000, 10_000, 50_000],
    rateLogins: quick ? 500 : 5000,
    rateReps: quick ? 1 : 3,
    bulkRows: quick ? 100_000 : 1_000_000,
    bulkReps: quick ? 1 : 3,
    workers: positive(values.workers, 2, "--workers"),
    ...(values.rate !== undefined ? { rate: positive(values.rate, 1, "--rate") } : {}),
    ...(values.report !== undefined ? { reportFile: values.report } : {}),
  };
}

// A pattern against a cell name, segment by segment (script/mode/clients): "*" or a missing segment matches.
function matches(pattern: string, name: string): boolean {
  const want = pattern.split("/");
  const have = name.split("/");
  return want.every((w, i) => w === "*" || w === "" || w === have[i]);
}

function positive(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} wants a positive whole number, got ${text}`);
  return n;
}
