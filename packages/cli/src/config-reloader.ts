import {
  ConfigError,
  ControlStateError,
  type PgmuxConfig,
  type Pooler,
  type PoolerSettings,
  type ReloadReport,
  settingsFromConfig,
} from "@pgmux/core";
import type { Logger } from "pino";
import { ConfigWatcher } from "./config-watcher.js";
import { loadEffectiveConfig } from "./effective-config.js";

export interface ConfigReloaderOptions {
  readonly file: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly set: readonly string[];
  readonly pooler: Pooler;
  readonly log: Logger;
  /** The configuration in force (the one pgmux started with, then each accepted reload's). */
  readonly config: PgmuxConfig;
  /** The files it was read from (main file, includes, auth_file), for watching. */
  readonly files: readonly string[];
  /** How long the file watcher waits after the last change before reloading. */
  readonly debounceMs?: number;
  /** Applied to the engine settings of each accepted configuration (a worker takes its share of the limits). */
  readonly transform?: (settings: PoolerSettings) => PoolerSettings;
  /** Called with each accepted configuration (the admin server's view, the log level). */
  readonly onConfig?: (config: PgmuxConfig, previous: PgmuxConfig) => void;
}

/** General settings that a reload cannot change: they are read once, at start-up. */
const RESTART_ONLY = [
  "admin_listen_addr",
  "admin_listen_port",
  "admin_api_token",
  "pgbouncer_exporter_compat",
  "log_format",
  "workers",
] as const;

/**
 * Re-reads the configuration (file, then environment and flags, as at start-up) and applies it to the
 * running engine, one reload at a time, whatever asked for it: SIGHUP, the RELOAD console command, POST
 * /v1/reload, or a change in the watched directory. A configuration with problems is rejected: its
 * problems are logged (file:line: key: …, never a secret), and the one in force stays, untouched.
 */
export class ConfigReloader {
  config: PgmuxConfig;
  private files: readonly string[];
  private queue: Promise<unknown> = Promise.resolve();
  private watcher: ConfigWatcher | null = null;

  constructor(private readonly options: ConfigReloaderOptions) {
    this.config = options.config;
    this.files = options.files;
  }

  /** Reloads now; rejects with ControlStateError (the problems) when the new configuration is refused. */
  reload(trigger: string): Promise<ReloadReport> {
    const run = this.queue.then(() => this.reloadNow(trigger));
    this.queue = run.catch(() => {});
    return run;
  }

  private reloadNow(trigger: string): ReloadReport {
    const { log, pooler } = this.options;
    let next: ReturnType<typeof loadEffectiveConfig>;
    let settings: ReturnType<typeof settingsFromConfig>;
    try {
      next = loadEffectiveConfig(this.options.file, this.options.env, this.options.set);
      settings = settingsFromConfig(next.loaded.config);
      if (this.options.transform !== undefined) settings = this.options.transform(settings);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map((p) => p.text) : [(err as Error).message];
      log.error({ trigger, problems }, "configuration rejected; the one in force stays");
      throw new ControlStateError(`configuration rejected; the one in force stays:\n${problems.join("\n")}`);
    }
    for (const w of next.warnings)
      log.warn({ key: w.key, file: w.file, line: w.line, detail: w.message }, "configuration warning");
    const previous = this.config;
    const report = pooler.reload(settings);
    const needRestart = [...report.needRestart];
    for (const key of RESTART_ONLY) {
      if (JSON.stringify(previous.pgmux[key]) !== JSON.stringify(next.loaded.config.pgmux[key])) needRestart.push(key);
    }
    this.config = next.loaded.config;
    this.files = next.loaded.sources.files;
    this.watcher?.rebase();
    this.options.onConfig?.(this.config, previous);
    log.info(
      { trigger, added: report.added, removed: report.removed, pools: report.pools.length },
      "configuration reloaded",
    );
    if (needRestart.length > 0) {
      log.warn({ keys: needRestart }, "some changed settings take effect only after a restart");
    }
    return { ...report, needRestart };
  }

  /** Reloads when the configuration's files change (watch_config; see ConfigWatcher). */
  watch(): void {
    this.watcher ??= new ConfigWatcher(
      () => this.files,
      () => void this.reload("configuration file changed").catch(() => {}),
      this.options.log,
      this.options.debounceMs,
    );
    this.watcher.start();
  }

  close(): void {
    this.watcher?.close();
  }
}
