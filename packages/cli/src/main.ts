#!/usr/bin/env node
/**
 * The `pgmux` command: see args.ts for its options and docs/operations.md for configuration sources,
 * signals, reload, drain and logs.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AdminServer } from "@pgmux/admin";
import {
  ConfigError,
  type LogLevel,
  type PgmuxConfig,
  Pooler,
  type PoolerSettings,
  settingsForWorker,
  settingsFromConfig,
} from "@pgmux/core";
import type { Logger } from "pino";
import { type CliArgs, parseCliArgs, USAGE } from "./args.js";
import { bannerFields, bannerFromConfig } from "./banner.js";
import { ConfigReloader } from "./config-reloader.js";
import { ConfigWatcher } from "./config-watcher.js";
import { loadEffectiveConfig } from "./effective-config.js";
import { createLogger, isLogLevel } from "./logger.js";
import { renderConfig } from "./print-config.js";
import { Shutdown } from "./shutdown.js";
import { Supervisor, type WorkerMessage } from "./supervisor.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function levelFor(verbosity: number, configured: LogLevel): LogLevel {
  if (verbosity < 0) return "warn";
  if (verbosity === 1) return "debug";
  if (verbosity >= 2) return "trace";
  return configured;
}

async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseCliArgs>;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    console.error(`pgmux: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.command === "help") {
    console.log(USAGE);
    return 0;
  }
  if (args.command === "version") {
    console.log(`pgmux ${version()}`);
    return 0;
  }
  if (args.command === "check" && args.file === undefined) {
    console.error(`pgmux check: name the configuration file to check\n${USAGE}`);
    return 2;
  }

  let effective: ReturnType<typeof loadEffectiveConfig>;
  try {
    effective = loadEffectiveConfig(args.file, process.env, args.set);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  const { loaded } = effective;
  const origin = args.file ?? "environment and flags only";
  if (args.printConfig) {
    for (const w of effective.warnings) console.error(`warning: ${w.text}`);
    process.stdout.write(renderConfig(loaded.config, origin));
    return 0;
  }
  if (args.command === "check") {
    for (const w of effective.warnings) console.error(`warning: ${w.text}`);
    try {
      settingsFromConfig(loaded.config);
    } catch (err) {
      console.error(`${args.file}: ${(err as Error).message}`);
      return 1;
    }
    console.log(`${args.file}: configuration is valid`);
    return 0;
  }

  const g = loaded.config.pgmux;
  const root = createLogger({ level: levelFor(args.verbosity, g.log_level), format: g.log_format });
  const worker = args.worker;
  const log = worker === undefined ? root : root.child({ worker: worker.index });
  // Warnings are the supervisor's to tell (once), not each worker's.
  if (worker === undefined) {
    for (const w of effective.warnings) {
      log.warn({ key: w.key, file: w.file, line: w.line, detail: w.message }, "configuration warning");
    }
  }
  if (worker === undefined && g.workers > 1) return runSupervisor(args, loaded.config, loaded.sources.files, log);

  const forWorker = (s: PoolerSettings) =>
    worker === undefined ? s : settingsForWorker(s, worker.index, worker.count);
  const pooler = new Pooler({
    settings: forWorker(settingsFromConfig(loaded.config)),
    log,
    ...(worker !== undefined
      ? {
          worker: {
            index: worker.index,
            count: worker.count,
            forward: (pid: number, key: Buffer) => process.send?.({ type: "cancel", pid, key: key.toString("base64") }),
          },
        }
      : {}),
  });
  await pooler.start();
  if (worker !== undefined) {
    process.on("message", (m: WorkerMessage) => {
      if (m.type === "cancel") pooler.cancelRequest(m.pid, Buffer.from(m.key, "base64"));
    });
  }

  const reloader = new ConfigReloader({
    file: args.file,
    env: process.env,
    set: args.set,
    pooler,
    log,
    config: loaded.config,
    files: loaded.sources.files,
    transform: forWorker,
    onConfig: (config, previous) => {
      admin.setConfig(config);
      // A level set in the file applies on reload unless -v/-q fixed it on the command line.
      if (args.verbosity === 0 && config.pgmux.log_level !== previous.pgmux.log_level) {
        log.level = config.pgmux.log_level;
      }
    },
  });
  let shutdown: Shutdown | null = null;
  const token = g.admin_api_token;
  const admin: AdminServer = new AdminServer({
    pooler,
    log,
    // A worker's admin server is for its supervisor only, which serves the configured address.
    host: worker === undefined ? g.admin_listen_addr : "127.0.0.1",
    port: worker === undefined ? g.admin_listen_port : 0,
    config: loaded.config,
    version: version(),
    pgbouncerExporterCompat: g.pgbouncer_exporter_compat,
    ...(token !== undefined && token !== "" ? { apiToken: token } : {}),
    logLevel: {
      get: () => log.level,
      set: (level: string) => {
        if (!isLogLevel(level)) return false;
        log.level = level;
        log.warn({ level }, "log level changed");
        return true;
      },
    },
    control: {
      reload: async () => {
        await reloader.reload("admin request");
      },
      shutdown: async (mode) => {
        if (shutdown === null) return;
        if (mode === "immediate") await shutdown.immediate("admin shutdown");
        else await shutdown.graceful("admin shutdown", false);
      },
    },
  });
  const adminUrl = await admin.start();
  shutdown = new Shutdown({
    pooler,
    log,
    notReady: () => admin.setDraining(true),
    timing: () => ({
      delayMs: Math.round(reloader.config.pgmux.shutdown_delay * 1000),
      timeoutMs: Math.round(reloader.config.pgmux.shutdown_timeout * 1000),
    }),
    finish: async () => {
      reloader.close();
      await admin.close();
    },
  });
  shutdown.listen();
  process.on("SIGHUP", () => {
    reloader.reload("SIGHUP").catch(() => {});
  });
  process.on("SIGUSR1", () => {
    admin.control.pause().then(
      () => log.info({ trigger: "SIGUSR1" }, "paused"),
      (err: Error) => log.warn({ trigger: "SIGUSR1", reason: err.message }, "pause refused"),
    );
  });
  process.on("SIGUSR2", () => {
    admin.control.resume().then(
      () => log.info({ trigger: "SIGUSR2" }, "resumed"),
      (err: Error) => log.warn({ trigger: "SIGUSR2", reason: err.message }, "resume refused"),
    );
  });
  if (g.watch_config && args.file !== undefined && worker === undefined) reloader.watch();

  const banner = bannerFields({ version: version(), config: loaded.config, configFile: args.file, pooler, adminUrl });
  if (worker === undefined) {
    log.info(banner, "pgmux started");
  } else {
    // The supervisor goes: so does this worker (no client is left on a port nobody supervises).
    process.on("disconnect", () => void shutdown?.immediate("the supervisor is gone"));
    process.send?.({ type: "started", adminUrl, listen: banner.listen as string[] } satisfies WorkerMessage);
    log.info({ listen: banner.listen, admin: adminUrl }, "pgmux worker started");
  }
  await shutdown.done;
  // Anything still holding the event loop open (a socket lingering after its last message) must not keep
  // a stopped pgmux alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
  return 0;
}

/** workers: N — this process supervises N workers that share the port (see supervisor.ts). */
async function runSupervisor(
  args: CliArgs,
  config: PgmuxConfig,
  files: readonly string[],
  log: Logger,
): Promise<number> {
  let stopping: Promise<void> | null = null;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping !== null) {
      // A second signal: the workers treat it as "stop now".
      supervisor.signalAll(signal);
      return;
    }
    log.info({ reason: signal, workers: config.pgmux.workers }, "pgmux stopping its workers");
    stopping = supervisor.shutdown(signal);
  };
  const supervisor = new Supervisor({
    count: config.pgmux.workers,
    mainPath: fileURLToPath(import.meta.url),
    argv: process.argv.slice(2),
    file: args.file,
    set: args.set,
    config,
    log,
    requestShutdown: (mode) => stop(mode === "graceful" ? "SIGINT" : "SIGQUIT"),
  });
  const adminUrl = await supervisor.start();
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGQUIT", () => {
    if (stopping === null) stop("SIGQUIT");
    else supervisor.signalAll("SIGQUIT");
  });
  process.on("SIGHUP", () => supervisor.reload("SIGHUP"));
  // The supervisor watches, and relays a change as a reload to every worker.
  const watcher =
    config.pgmux.watch_config && args.file !== undefined
      ? new ConfigWatcher(
          () => files,
          () => supervisor.reload("configuration file changed"),
          log,
        )
      : null;
  watcher?.start();
  process.on("SIGUSR1", () => supervisor.signalAll("SIGUSR1"));
  process.on("SIGUSR2", () => supervisor.signalAll("SIGUSR2"));
  log.info(
    { ...bannerFromConfig(version(), config, args.file, supervisor.listen, adminUrl), workers: config.pgmux.workers },
    "pgmux started",
  );
  await new Promise<void>((resolve) => {
    const wait = setInterval(() => {
      if (stopping !== null) {
        clearInterval(wait);
        resolve();
      }
    }, 50);
  });
  await stopping;
  watcher?.close();
  await supervisor.close();
  log.info("pgmux stopped");
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
