import type { SourceLocation } from "./config-error.js";

/** A path into the model: `["pgmux", "listen_port"]`, `["databases", "app", "port"]`, `["auth", "alice"]`. */
export type ConfigPath = readonly (string | number)[];

/**
 * Which files a configuration was read from, and where each setting was written, so that a problem found
 * after parsing (by validation, or later by the pooler at run time) can still point at `file:line`.
 */
export class ConfigSources {
  /** Absolute paths, in the order they were read: the main file, its includes, the auth_file. */
  readonly files: string[] = [];
  private readonly locations = new Map<string, SourceLocation>();

  constructor(readonly mainFile: string) {}

  addFile(file: string): void {
    if (!this.files.includes(file)) this.files.push(file);
  }

  /** Records where `path` was written; a later call for the same path wins, as a later line does. */
  set(path: ConfigPath, at: SourceLocation): void {
    // Copy only file and line: callers pass richer objects (an ini entry) that may hold a secret value.
    const copy = at.line === undefined ? { file: at.file } : { file: at.file, line: at.line };
    this.locations.set(JSON.stringify(path.map(String)), copy);
  }

  /** Forgets where `path` and everything under it were written (an entry replaced whole from elsewhere). */
  forget(path: ConfigPath): void {
    const prefix = JSON.stringify(path.map(String)).slice(0, -1);
    for (const key of [...this.locations.keys()]) {
      if (key === `${prefix}]` || key.startsWith(`${prefix},`)) this.locations.delete(key);
    }
  }

  /**
   * Where `path` was written. A setting inside a connection string has no line of its own, so this falls
   * back to its nearest recorded parent (the `[databases]` line), and finally to the main file.
   */
  locate(path: ConfigPath): SourceLocation {
    const parts = path.map(String);
    for (let n = parts.length; n > 0; n--) {
      const at = this.locations.get(JSON.stringify(parts.slice(0, n)));
      if (at !== undefined) return at;
    }
    return { file: this.mainFile };
  }

  /** Whether the file set `path` itself (as opposed to the value being a default). */
  has(path: ConfigPath): boolean {
    return this.locations.has(JSON.stringify(path.map(String)));
  }
}
