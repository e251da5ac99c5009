import { parseArgs } from "node:util";

export const USAGE = `usage: pgmux [options] [--config] [FILE]   run pgmux from a pgbouncer.ini or pgmux.yaml (FILE may be
                                           left out when the environment configures everything)
       pgmux check [options] FILE          validate the configuration and exit (non-zero on problems)
       pgmux -V | --version                print the version
options:
  -c, --config FILE       the configuration file
  -s, --set KEY=VALUE     override a setting (repeatable); wins over the file and the environment:
                          listen_port=6433, databases.app.pool_size=5, databases.app="host=db port=5432"
      --print-config      print the effective configuration (secrets redacted) as pgmux.yaml and exit
  -v, --verbose           debug logs (twice: trace)
  -q, --quiet             warnings and errors only
  -h, --help              this text
environment: PGMUX_<KEY> for every general key, PGMUX_<KEY>_FILE to read it from a file, PGMUX_USERLIST[_FILE],
  PGMUX_DATABASES__<name>[_FILE], PGMUX_USERS__<name>, DATABASE_URL[_FILE] (see docs/operations.md)
signals: SIGHUP reload, SIGTERM drain (after shutdown_delay), SIGINT drain now, SIGQUIT or a second SIGTERM
  stop now, SIGUSR1 pause, SIGUSR2 resume`;

export type Command = "run" | "check" | "help" | "version";

export interface CliArgs {
  readonly command: Command;
  readonly file: string | undefined;
  readonly set: readonly string[];
  readonly printConfig: boolean;
  /** -v counts: 1 debug, 2 trace; -q is -1. */
  readonly verbosity: number;
  /** Internal (`--worker i/N`): this process is worker i of N, started by the supervisor (workers: N). */
  readonly worker: { index: number; count: number } | undefined;
}

/** Parses the command line; throws a TypeError (from node:util) with a readable message on bad options. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const { values, positionals, tokens } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    tokens: true,
    options: {
      config: { type: "string", short: "c" },
      set: { type: "string", short: "s", multiple: true },
      "print-config": { type: "boolean" },
      version: { type: "boolean", short: "V" },
      help: { type: "boolean", short: "h" },
      verbose: { type: "boolean", short: "v", multiple: true },
      quiet: { type: "boolean", short: "q" },
      worker: { type: "string" },
    },
  });
  let worker: CliArgs["worker"];
  if (values.worker !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(values.worker);
    if (m === null || Number(m[1]) >= Number(m[2])) throw new TypeError("--worker is internal: i/N with i < N");
    worker = { index: Number(m[1]), count: Number(m[2]) };
  }
  const verbose = tokens.filter((t) => t.kind === "option" && t.name === "verbose").length;
  const verbosity = values.quiet === true ? -1 : verbose;
  const base = { set: values.set ?? [], printConfig: values["print-config"] === true, verbosity, worker };
  if (values.help === true) return { command: "help", file: undefined, ...base };
  if (values.version === true) return { command: "version", file: undefined, ...base };
  const check = positionals[0] === "check";
  const rest = check ? positionals.slice(1) : positionals;
  if (rest.length > 1) throw new TypeError(`one configuration file only (got ${rest.length}: ${rest.join(" ")})`);
  if (values.config !== undefined && rest.length > 0) {
    throw new TypeError("give the configuration file once: either --config FILE or FILE");
  }
  return { command: check ? "check" : "run", file: values.config ?? rest[0], ...base };
}
