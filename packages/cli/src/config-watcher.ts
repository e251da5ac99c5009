import { createHash } from "node:crypto";
import { type FSWatcher, readFileSync, watch } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";

/**
 * Watches the directories of the configuration's files (main file, includes, auth_file) and calls
 * `onChange` once their contents have changed. The directories, not the files: a Kubernetes ConfigMap or
 * Secret volume is updated by swapping its `..data` symlink, which only a directory watch sees. Events are
 * debounced, and an event that left every file's contents as they were (a touch, an editor's temporary
 * file) calls nothing.
 */
export class ConfigWatcher {
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private fingerprint: string;

  constructor(
    private readonly files: () => readonly string[],
    private readonly onChange: () => void,
    private readonly log: Logger,
    private readonly debounceMs = 500,
  ) {
    this.fingerprint = this.filesFingerprint();
  }

  start(): void {
    const dirs = new Set(this.files().map((f) => dirname(f)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.changed());
        w.on("error", (err) => this.log.warn({ err, dir }, "configuration watch failed"));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ err, dir }, "cannot watch the configuration directory");
      }
    }
    this.log.info({ dirs: [...dirs] }, "watching the configuration for changes");
  }

  /** The files' contents as they are now count as seen (after a reload, whatever triggered it). */
  rebase(): void {
    this.fingerprint = this.filesFingerprint();
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
      const now = this.filesFingerprint();
      if (now === this.fingerprint) return;
      this.fingerprint = now;
      this.onChange();
    }, this.debounceMs);
    this.debounce.unref();
  }

  private filesFingerprint(): string {
    const h = createHash("sha256");
    for (const f of this.files()) {
      try {
        h.update(f).update("\0").update(readFileSync(f)).update("\0");
      } catch {
        h.update(f).update("\0missing\0");
      }
    }
    return h.digest("hex");
  }
}
