import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError, type ConfigProblem, configProblem, type SourceLocation } from "./config-error.js";

/**
 * PgBouncer's ini dialect, as its parser reads it:
 * - leading whitespace is skipped, so blank and indented lines are fine;
 * - a line whose first character is `;` or `#` is a comment; later on a line those characters are ordinary
 *   text, so `server_reset_query = SELECT 1 ; x` keeps the `; x` (PgBouncer does the same);
 * - `[name]` starts a section (a trailing comment after the `]` is allowed);
 * - `key = value`: the key is letters, digits and `_ . - *`, or a double-quoted name (`""` for a quote) for
 *   database names with other characters; the value runs to the end of the line, trailing whitespace cut.
 *   The value is not unquoted here: quotes mean something only inside connection strings;
 * - `%include path` reads another file in place. The current section carries into and out of it, as in
 *   PgBouncer.
 *
 * One deliberate difference: a relative include path is resolved against the directory of the file that
 * contains the `%include`, not the process's working directory, so a configuration behaves the same
 * wherever pgmux is started from.
 */

export interface IniSection extends SourceLocation {
  readonly name: string;
  readonly line: number;
}

export interface IniEntry extends SourceLocation {
  /** The section the entry is in (a setting before any section header is an error, not an entry). */
  readonly section: IniSection;
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

export interface IniDocument {
  readonly sections: readonly IniSection[];
  readonly entries: readonly IniEntry[];
  /** Absolute paths of every file read, the main one first. */
  readonly files: readonly string[];
}

/** Reads a whole text file; injectable so tests can serve files from memory. Throws like fs does. */
export type ReadTextFile = (path: string) => string;

export const readTextFile: ReadTextFile = (path) => readFileSync(path, "utf8");

/** PgBouncer stops at ten nested includes; so do we, which also ends any loop the path check misses. */
const MAX_INCLUDE_DEPTH = 10;

const BARE_KEY = /^[A-Za-z0-9_.\-*]+/;

/** Why a file could not be read, without anything that was in it. */
export function describeReadError(err: unknown): string {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") {
    switch (err.code) {
      case "ENOENT":
        return "no such file";
      case "EACCES":
      case "EPERM":
        return "permission denied";
      case "EISDIR":
        return "it is a directory";
      default:
        return err.code;
    }
  }
  return "it could not be read";
}

class IniReader {
  readonly sections: IniSection[] = [];
  readonly entries: IniEntry[] = [];
  readonly files: string[] = [];
  readonly problems: ConfigProblem[] = [];
  private section: IniSection | undefined;

  constructor(private readonly readFile: ReadTextFile) {}

  readFileAt(file: string, includedFrom: SourceLocation | undefined, stack: readonly string[]): void {
    let text: string;
    try {
      text = this.readFile(file);
    } catch (err) {
      const reason = describeReadError(err);
      this.problems.push(
        includedFrom === undefined
          ? configProblem({ file }, "", `cannot read the configuration file: ${reason} (check the path)`)
          : configProblem(
              includedFrom,
              "%include",
              `cannot read ${file}: ${reason} (check the path; a relative one is taken from this file's directory)`,
            ),
      );
      return;
    }
    if (!this.files.includes(file)) this.files.push(file);
    this.readText(text, file, [...stack, file]);
  }

  readText(text: string, file: string, stack: readonly string[]): void {
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const at = { file, line: i + 1 };
      let line = lines[i]!;
      if (i === 0 && line.startsWith("\uFEFF")) line = line.slice(1);
      line = line.trim();
      if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
      if (line.startsWith("%include")) {
        this.include(line, at, stack);
      } else if (line.startsWith("[")) {
        this.sectionHeader(line, at);
      } else {
        this.keyValue(line, at);
      }
    }
  }

  private include(line: string, at: { file: string; line: number }, stack: readonly string[]): void {
    const rest = line.slice("%include".length);
    if (rest !== "" && rest[0] !== " " && rest[0] !== "\t") {
      this.problems.push(configProblem(at, "", "unknown directive (the only one is %include followed by a file name)"));
      return;
    }
    const target = rest.trim();
    if (target === "") {
      this.problems.push(configProblem(at, "%include", "needs a file name (write %include path/to/file.ini)"));
      return;
    }
    const path = resolve(dirname(at.file), target);
    if (stack.includes(path)) {
      const chain = [...stack.slice(stack.indexOf(path)), path].join(" -> ");
      this.problems.push(configProblem(at, "%include", `includes itself: ${chain} (remove one of these includes)`));
      return;
    }
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      this.problems.push(
        configProblem(at, "%include", `nests more than ${MAX_INCLUDE_DEPTH} files deep (flatten the includes)`),
      );
      return;
    }
    this.readFileAt(path, at, stack);
  }

  private sectionHeader(line: string, at: { file: string; line: number }): void {
    const close = line.indexOf("]");
    if (close < 0) {
      this.problems.push(configProblem(at, "", "section header has no closing ] (write [name])"));
      return;
    }
    const after = line.slice(close + 1).trim();
    if (after !== "" && !after.startsWith(";") && !after.startsWith("#")) {
      this.problems.push(
        configProblem(at, "", "unexpected text after the section header (put settings on their own lines)"),
      );
      return;
    }
    const name = line.slice(1, close).trim();
    if (name === "") {
      this.problems.push(configProblem(at, "", "section header has no name (write e.g. [pgbouncer])"));
      return;
    }
    this.section = { name, file: at.file, line: at.line };
    this.sections.push(this.section);
  }

  private keyValue(line: string, at: { file: string; line: number }): void {
    let key: string;
    let rest: string;
    if (line.startsWith('"')) {
      const quoted = readQuotedName(line);
      if (quoted === undefined) {
        this.problems.push(configProblem(at, "", 'quoted name has no closing " (write "name" = value)'));
        return;
      }
      [key, rest] = quoted;
    } else {
      const m = BARE_KEY.exec(line);
      if (m === null) {
        this.problems.push(
          configProblem(
            at,
            "",
            "not a setting, section, comment or %include (write key = value, or start the line with ; to comment it out)",
          ),
        );
        return;
      }
      key = m[0];
      rest = line.slice(key.length);
    }
    rest = rest.replace(/^[ \t]+/, "");
    if (!rest.startsWith("=")) {
      this.problems.push(configProblem(at, key, "expected = after the name (write key = value)"));
      return;
    }
    if (key === "") {
      this.problems.push(configProblem(at, "", 'the name before = is empty (write "name" = value)'));
      return;
    }
    const value = rest.slice(1).trim();
    if (this.section === undefined) {
      this.problems.push(
        configProblem(at, key, "comes before any [section] (put it under [pgbouncer], [databases] or [users])"),
      );
      return;
    }
    this.entries.push({ section: this.section, key, value, file: at.file, line: at.line });
  }
}

/** Reads `"name"` with `""` as an escaped quote; returns the name and the text after it. */
function readQuotedName(line: string): [string, string] | undefined {
  let name = "";
  for (let i = 1; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') {
      if (line[i + 1] === '"') {
        name += '"';
        i++;
        continue;
      }
      return [name, line.slice(i + 1)];
    }
    name += c;
  }
  return undefined;
}

/**
 * Reads an ini file and everything it includes. Throws ConfigError listing every syntax problem, each with
 * its file and line; never echoes a line's text, which may hold a password.
 */
export function parseIni(path: string, readFile: ReadTextFile = readTextFile): IniDocument {
  const reader = new IniReader(readFile);
  reader.readFileAt(resolve(path), undefined, []);
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return { sections: reader.sections, entries: reader.entries, files: reader.files };
}

/** Parses ini text that did not come from a file of its own (tests, generated configs); includes still work. */
export function parseIniText(text: string, file: string, readFile: ReadTextFile = readTextFile): IniDocument {
  const reader = new IniReader(readFile);
  const path = resolve(file);
  reader.files.push(path);
  reader.readText(text, path, [path]);
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return { sections: reader.sections, entries: reader.entries, files: reader.files };
}
