import { createHash } from "node:crypto";
import { type FSWatcher, readFileSync, watch } from "node:fs";
import { dirname } from "node:path";
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
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private fingerprint: string;

  constructor(private readonly options: ConfigReloaderOptions) {
    this.config = options.config;
    this.files = options.files;
    this.fingerprint = this.filesFingerprint();
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
    this.fingerprint = this.filesFingerprint();
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

  /**
   * Watches the directories of the configuration's files. A Kubernetes ConfigMap volume updates by
   * swapping its `..data` symlink, which a watch on the file itself would miss; a watch on the directory
   * sees it. Changes are debounced, and nothing is reloaded when the files' contents are unchanged.
   */
  watch(): void {
    const dirs = new Set(this.files.map((f) => dirname(f)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.changed());
        w.on("error", (err) => this.options.log.warn({ err, dir }, "configuration watch failed"));
        this.watchers.push(w);
      } catch (err) {
        this.options.log.warn({ err, dir }, "cannot watch the configuration directory");
      }
    }
    this.options.log.info({ dirs: [...dirs] }, "watching the configuration for changes");
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.debounce !== null) clearTimeout(this.debounce);
  }

  private changed(): void {
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      if (this.filesFingerprint() === this.fingerprint) return;
      this.reload("configuration file changed").catch(() => {});
    }, this.options.debounceMs ?? 500);
    this.debounce.unref();
  }

  /** A hash of every configuration file's contents (a missing file hashes as missing). */
  private filesFingerprint(): string {
    const h = createHash("sha256");
    for (const f of this.files) {
      try {
        h.update(f).update("\0").update(readFileSync(f)).update("\0");
      } catch {
        h.update(f).update("\0missing\0");
      }
    }
    return h.digest("hex");
  }
}
