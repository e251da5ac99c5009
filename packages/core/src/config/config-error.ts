/** Where a setting was written: the file, and the 1-based line when the format gives one. */
export interface SourceLocation {
  readonly file: string;
  readonly line?: number;
}

/**
 * One thing wrong with a configuration. `message` says what is wrong and, in parentheses, what to do about
 * it; it never contains a password or a userlist secret. `text` is the line a person reads:
 * `file:line: key: message`.
 */
export interface ConfigProblem extends SourceLocation {
  /** The setting, as a person would name it: `listen_port`, `databases.app.port`, `userlist.alice`; may be empty. */
  readonly key: string;
  readonly message: string;
  readonly text: string;
}

/** Something accepted but worth knowing, such as a PgBouncer setting pgmux does not act on yet. */
export interface ConfigWarning extends SourceLocation {
  readonly key: string;
  /** A whole sentence that names the key. */
  readonly message: string;
  /** `file:line: message`. */
  readonly text: string;
}

function where(at: SourceLocation): string {
  return at.line === undefined ? at.file : `${at.file}:${at.line}`;
}

export function configProblem(at: SourceLocation, key: string, message: string): ConfigProblem {
  const text = key === "" ? `${where(at)}: ${message}` : `${where(at)}: ${key}: ${message}`;
  return at.line === undefined
    ? { file: at.file, key, message, text }
    : { file: at.file, line: at.line, key, message, text };
}

export function configWarning(at: SourceLocation, key: string, message: string): ConfigWarning {
  const text = `${where(at)}: ${message}`;
  return at.line === undefined
    ? { file: at.file, key, message, text }
    : { file: at.file, line: at.line, key, message, text };
}

/**
 * The only error the config loaders throw. It carries every problem found, not just the first, so a person
 * fixes a file in one pass; the message lists them one per line.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`pgmux cannot use this configuration (${count}):\n${problems.map((p) => `  ${p.text}`).join("\n")}`);
    this.problems = problems;
  }
}
