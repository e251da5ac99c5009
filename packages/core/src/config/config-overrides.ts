/**
 * Settings that come from outside the configuration file: the environment (`PGMUX_*`, `DATABASE_URL`) and
 * the command line (`--set key=value`). They are laid over what the file says before validation, so the
 * order of precedence is: defaults < file < environment < flags, and every value, wherever it came from, is
 * checked by the same schema and reported with its origin (`env PGMUX_LISTEN_PORT: listen_port: …`).
 *
 * The mapping is systematic, so no key needs its own line here:
 *
 * | where                               | what it sets                                                    |
 * | ----------------------------------- | --------------------------------------------------------------- |
 * | `PGMUX_<KEY>`                       | a general setting (`PGMUX_LISTEN_PORT` → `listen_port`)         |
 * | `PGMUX_<KEY>_FILE`                  | the same, read from a file (for secrets: `admin_api_token`, …)  |
 * | `PGMUX_DATABASES__<name>[_FILE]`    | a whole `[databases]` entry, as a connection string             |
 * | `PGMUX_USERS__<name>`               | a whole `[users]` entry, as a connection string                 |
 * | `PGMUX_USERLIST[_FILE]`             | userlist.txt lines (`"user" "secret"`), added to the user list  |
 * | `DATABASE_URL[_FILE]`               | one database: `postgres://user:password@host:port/dbname`        |
 * | `--set key=value`                   | a general setting                                               |
 * | `--set databases.<name>=…`          | a whole database entry (`databases.<name>.<key>=…` for one key) |
 * | `--set users.<name>.<key>=…`        | a per-user setting                                              |
 * | `--set userlist.<user>=…`           | one user list entry (visible in `ps`: prefer the environment)   |
 *
 * A `*_FILE` value has its trailing newline removed (as written by `echo` or a Kubernetes Secret). A name
 * after `__` is taken exactly as written (environment names may be lower case). Variables starting with
 * `PGMUX_` that match no setting are ignored, with a warning when they look like a mistyped one.
 */
import { closestKey } from "./closest-key.js";
import { type ConfigProblem, type ConfigWarning, configProblem, configWarning } from "./config-error.js";
import { GENERAL_KEY_ALIASES, KNOWN_KEYS } from "./config-schema.js";
import type { ConfigPath } from "./config-sources.js";
import { parseConnectionString } from "./connection-string.js";
import { describeReadError, type ReadTextFile, readTextFile } from "./ini-parser.js";

/** One setting from outside the file. `path` is a model path: `["pgmux", key]`, `["databases", name]`, … */
export interface ConfigOverride {
  /** Where it came from, as a person names it: `env PGMUX_LISTEN_PORT`, `--set listen_port`. */
  readonly origin: string;
  /**
   * `["pgmux", key]`; `["databases" | "users" | "peers", name]` (a whole entry: a connection string or a
   * map); `["databases" | "users" | "peers", name, key]`; `["auth", user]` (a secret); `["userlist"]`
   * (userlist.txt text).
   */
  readonly path: ConfigPath;
  readonly value: unknown;
  /** The value must never be shown (a password, a token, a connection string that may hold one). */
  readonly secret: boolean;
}

/** Overrides from one source, and what was wrong with the source itself (unreadable `*_FILE`, bad URL). */
export interface ConfigOverrides {
  readonly overrides: readonly ConfigOverride[];
  readonly problems: readonly ConfigProblem[];
  readonly warnings: readonly ConfigWarning[];
}

export const NO_OVERRIDES: ConfigOverrides = { overrides: [], problems: [], warnings: [] };

/** General settings whose values are secrets (their environment values are never shown). */
export const SECRET_SETTINGS: readonly string[] = ["admin_api_token", "auth_ldap_options"];

const ENV_PREFIX = "PGMUX_";
const ENTRY_SECTIONS = ["databases", "users", "peers"] as const;
type EntrySection = (typeof ENTRY_SECTIONS)[number];

function generalKeys(): readonly string[] {
  return KNOWN_KEYS.pgmux;
}

/** Everything after the last newline-free character: what `echo x > file` or a Secret adds. */
function withoutTrailingNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/**
 * Reads the environment's pgmux settings. Pure apart from `readFile` (for `*_FILE`), so it is tested with
 * a plain object for `env`.
 */
export function envOverrides(
  env: Readonly<Record<string, string | undefined>>,
  readFile: ReadTextFile = readTextFile,
): ConfigOverrides {
  const overrides: ConfigOverride[] = [];
  const problems: ConfigProblem[] = [];
  const warnings: ConfigWarning[] = [];
  const keys = generalKeys();
  const taken = new Set<string>();

  /** The value of `name`, or of `name_FILE` read from its file; both set is a mistake. */
  const lookup = (name: string, key: string): { origin: string; value: string } | null => {
    const direct = env[name];
    const file = env[`${name}_FILE`];
    taken.add(name);
    taken.add(`${name}_FILE`);
    if (direct !== undefined && file !== undefined) {
      problems.push(
        configProblem(
          { file: `env ${name}_FILE` },
          key,
          `${name} is set too (set only one of ${name} and ${name}_FILE)`,
        ),
      );
      return null;
    }
    if (direct !== undefined) return { origin: `env ${name}`, value: direct };
    if (file === undefined) return null;
    try {
      return { origin: `env ${name}_FILE`, value: withoutTrailingNewline(readFile(file)) };
    } catch (err) {
      problems.push(
        configProblem(
          { file: `env ${name}_FILE` },
          key,
          `cannot read ${file}: ${describeReadError(err)} (check the path, and that the file is mounted)`,
        ),
      );
      return null;
    }
  };

  for (const key of keys) {
    const name = `${ENV_PREFIX}${key.toUpperCase()}`;
    // PGMUX_AUTH_FILE is the auth_file setting, not "PGMUX_AUTH read from a file": exact names come first.
    const found = lookup(name, key);
    if (found === null) continue;
    const target = GENERAL_KEY_ALIASES[key] ?? key;
    overrides.push({
      origin: found.origin,
      path: ["pgmux", target],
      value: found.value,
      secret: SECRET_SETTINGS.includes(target),
    });
  }

  const userlist = lookup(`${ENV_PREFIX}USERLIST`, "userlist");
  if (userlist !== null)
    overrides.push({ origin: userlist.origin, path: ["userlist"], value: userlist.value, secret: true });

  const url = lookup("DATABASE_URL", "DATABASE_URL");
  if (url !== null) {
    const parsed = databaseUrlOverrides(url.value, url.origin);
    overrides.push(...parsed.overrides);
    problems.push(...parsed.problems);
  }

  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || taken.has(name)) continue;
    const rest = name.slice(ENV_PREFIX.length);
    const entry = /^(DATABASES|USERS|PEERS)__(.+?)(_FILE)?$/i.exec(rest);
    if (entry !== null) {
      const section = entry[1]!.toLowerCase() as EntrySection;
      const entryName = entry[2]!;
      const base = `${ENV_PREFIX}${entry[1]}__${entryName}`;
      if (taken.has(base)) continue;
      const found = lookup(base, `${section}.${entryName}`);
      if (found !== null) {
        overrides.push({ origin: found.origin, path: [section, entryName], value: found.value, secret: true });
      }
      continue;
    }
    const key = rest.toLowerCase().replace(/_file$/, "");
    const guess = closestKey(key, keys);
    if (guess !== undefined) {
      warnings.push(
        configWarning(
          { file: `env ${name}` },
          key,
          `${name} is not a pgmux setting and is ignored (did you mean ${ENV_PREFIX}${guess.toUpperCase()}?)`,
        ),
      );
    }
  }
  return { overrides, problems, warnings };
}

/**
 * `DATABASE_URL=postgres://user:password@host:port/dbname?pool_size=5`: one database entry, named like
 * its dbname, and the user with that password in the user list, so the application logs in to pgmux with
 * the same credentials it would give PostgreSQL and pgmux logs in to PostgreSQL with them. Query
 * parameters that are per-database settings are kept (others are problems).
 */
export function databaseUrlOverrides(text: string, origin: string): ConfigOverrides {
  const fail = (message: string): ConfigOverrides => ({
    overrides: [],
    problems: [configProblem({ file: origin }, "DATABASE_URL", message)],
    warnings: [],
  });
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return fail("is not a URL (write postgres://user:password@host:5432/dbname)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    return fail(`has the scheme ${url.protocol.replace(/:$/, "")} (write postgres://user:password@host:5432/dbname)`);
  }
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const dbname = decodeURIComponent(url.pathname.replace(/^\//, "")) || user;
  if (dbname === "") return fail("names no database and no user (write postgres://user:password@host:5432/dbname)");
  const settings: Record<string, unknown> = { dbname };
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host !== "") settings.host = host;
  if (url.port !== "") settings.port = url.port;
  const problems: ConfigProblem[] = [];
  for (const [key, value] of url.searchParams) {
    if (key === "host") settings.host = value;
    else if (KNOWN_KEYS.databases.includes(key) && key !== "password" && key !== "user") settings[key] = value;
    else if (key !== "sslmode" && key !== "application_name") {
      problems.push(
        configProblem(
          { file: origin },
          `DATABASE_URL.${key}`,
          "is not a per-database setting pgmux knows (remove it from the URL's query)",
        ),
      );
    }
  }
  const overrides: ConfigOverride[] = [{ origin, path: ["databases", dbname], value: settings, secret: false }];
  if (user !== "" && password !== "") overrides.push({ origin, path: ["auth", user], value: password, secret: true });
  return { overrides, problems, warnings: [] };
}

/**
 * `--set key=value` arguments. The key is a general setting (`listen_port`, or `pgmux.listen_port`), or
 * dotted: `databases.<name>` (a connection string), `databases.<name>.<key>`, `users.<name>.<key>`,
 * `peers.<id>.<key>`, `userlist.<user>`.
 */
export function flagOverrides(assignments: readonly string[]): ConfigOverrides {
  const overrides: ConfigOverride[] = [];
  const problems: ConfigProblem[] = [];
  for (const assignment of assignments) {
    const eq = assignment.indexOf("=");
    if (eq <= 0) {
      problems.push(
        configProblem(
          { file: "--set" },
          "",
          `${assignment.slice(0, 40)} is not key=value (write e.g. --set listen_port=6433)`,
        ),
      );
      continue;
    }
    const key = assignment.slice(0, eq).trim();
    const value = assignment.slice(eq + 1);
    const origin = `--set ${key}`;
    const parts = key.split(".");
    const head = parts[0]!;
    if ((ENTRY_SECTIONS as readonly string[]).includes(head) && (parts.length === 2 || parts.length === 3)) {
      const path = parts.length === 2 ? [head, parts[1]!] : [head, parts[1]!, parts[2]!];
      overrides.push({ origin, path, value, secret: parts.length === 2 || parts[2] === "password" });
    } else if (head === "userlist" && parts.length === 2) {
      overrides.push({ origin, path: ["auth", parts[1]!], value, secret: true });
    } else if (head === "pgmux" && parts.length === 2) {
      const name = GENERAL_KEY_ALIASES[parts[1]!] ?? parts[1]!;
      overrides.push({ origin, path: ["pgmux", name], value, secret: SECRET_SETTINGS.includes(name) });
    } else if (parts.length === 1) {
      const name = GENERAL_KEY_ALIASES[head] ?? head;
      overrides.push({ origin, path: ["pgmux", name], value, secret: SECRET_SETTINGS.includes(name) });
    } else {
      problems.push(
        configProblem(
          { file: "--set" },
          key,
          "is not a setting path (write a general key, databases.<name>[.<key>], users.<name>.<key> or userlist.<user>)",
        ),
      );
    }
  }
  return { overrides, problems, warnings: [] };
}

/** Both sources in precedence order (the environment first, then the flags, which win). */
export function combineOverrides(...sources: readonly ConfigOverrides[]): ConfigOverrides {
  return {
    overrides: sources.flatMap((s) => s.overrides),
    problems: sources.flatMap((s) => s.problems),
    warnings: sources.flatMap((s) => s.warnings),
  };
}

/** Parses an override's whole-entry value (a connection string or a map) into settings, or a problem. */
export function entrySettings(
  section: EntrySection,
  override: ConfigOverride,
): { ok: true; settings: Record<string, unknown> } | { ok: false; problem: ConfigProblem } {
  const label = override.path.map(String).join(".");
  if (typeof override.value === "string") {
    const parsed = parseConnectionString(override.value, KNOWN_KEYS[section]);
    if (!parsed.ok) {
      const key = parsed.key === "" ? label : `${label}.${parsed.key}`;
      return { ok: false, problem: configProblem({ file: override.origin }, key, parsed.message) };
    }
    return { ok: true, settings: Object.fromEntries(parsed.values) };
  }
  if (typeof override.value === "object" && override.value !== null && !Array.isArray(override.value)) {
    return { ok: true, settings: { ...(override.value as Record<string, unknown>) } };
  }
  return {
    ok: false,
    problem: configProblem(
      { file: override.origin },
      label,
      "must be a connection string (write e.g. host=db port=5432)",
    ),
  };
}
