#!/usr/bin/env node
/**
 * The `pgmux` command.
 *
 *   pgmux [--config] FILE     run the pooler from a pgbouncer.ini or pgmux.yaml
 *   pgmux check FILE          validate FILE and exit (non-zero with file:line: key: problem lines)
 *   pgmux -V | --version
 *   pgmux -h | --help
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { AdminServer } from "@pgmux/admin";
import { ConfigError, loadConfig, Pooler, settingsFromConfig } from "@pgmux/core";
import { pino } from "pino";

const USAGE = `usage: pgmux [--config] FILE      run pgmux from a pgbouncer.ini or pgmux.yaml
       pgmux check FILE           validate a configuration file and exit
       pgmux -V | --version       print the version
options: -v/--verbose (debug logs), -q/--quiet (warnings and errors only)`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      version: { type: "boolean", short: "V" },
      help: { type: "boolean", short: "h" },
      verbose: { type: "boolean", short: "v" },
      quiet: { type: "boolean", short: "q" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(`pgmux ${version()}`);
    return 0;
  }
  const checkOnly = positionals[0] === "check";
  const file = values.config ?? (checkOnly ? positionals[1] : positionals[0]);
  if (file === undefined) {
    console.error(USAGE);
    return 2;
  }
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  if (checkOnly) {
    for (const w of loaded.warnings) console.error(`warning: ${w.text}`);
    console.log(`${file}: configuration is valid`);
    return 0;
  }
  const log = pino({
    level: values.verbose ? "debug" : values.quiet ? "warn" : "info",
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
  for (const w of loaded.warnings)
    log.warn({ key: w.key, file: w.file, line: w.line, detail: w.message }, "configuration warning");
  const pooler = new Pooler({ settings: settingsFromConfig(loaded.config), log });
  await pooler.start();
  const g = loaded.config.pgmux;
  const token = g.admin_api_token ?? process.env.PGMUX_ADMIN_API_TOKEN;
  let stop: (reason: string) => Promise<void> = async () => {};
  const admin = new AdminServer({
    pooler,
    log,
    host: g.admin_listen_addr,
    port: g.admin_listen_port,
    config: loaded.config,
    version: version(),
    pgbouncerExporterCompat: g.pgbouncer_exporter_compat,
    ...(token !== undefined && token !== "" ? { apiToken: token } : {}),
    control: {
      reload: async () => {
        const next = loadConfig(file);
        pooler.settings = settingsFromConfig(next.config);
        admin.setConfig(next.config);
        log.info({ config: file }, "configuration reloaded");
      },
      shutdown: () => stop("admin shutdown"),
    },
  });
  const adminUrl = await admin.start();
  log.info({ url: adminUrl }, "pgmux admin listening");
  log.info({ version: version(), config: file, databases: Object.keys(loaded.config.databases) }, "pgmux started");
  await new Promise<void>((resolve) => {
    let stopping: Promise<void> | null = null;
    stop = (reason: string) => {
      stopping ??= (async () => {
        log.info({ reason }, "pgmux stopping");
        // Not ready from now on; /metrics keeps answering while the pooler drains, and closes last.
        admin.setDraining(true);
        await pooler.stop().catch(() => {});
        await admin.close().catch(() => {});
        resolve();
      })();
      return stopping;
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
