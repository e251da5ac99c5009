import type { z } from "zod";
import { closestKey } from "./closest-key.js";
import {
  ConfigError,
  type ConfigProblem,
  type ConfigWarning,
  configProblem,
  configWarning,
  type SourceLocation,
} from "./config-error.js";
import {
  DATABASE_KEY_ALIASES,
  GENERAL_KEY_ALIASES,
  KNOWN_KEYS,
  type PgmuxConfig,
  PgmuxConfigSchema,
  RESERVED_DATABASE_NAMES,
} from "./config-schema.js";
import type { ConfigPath, ConfigSources } from "./config-sources.js";
import { UNIMPLEMENTED_KEYS, UNIMPLEMENTED_VALUES } from "./unimplemented-keys.js";

/** What a loader hands over: settings as written (ini text or YAML values), before defaults and checks. */
export interface RawConfig {
  pgmux: Record<string, unknown>;
  databases: Record<string, Record<string, unknown>>;
  users: Record<string, Record<string, unknown>>;
  peers: Record<string, Record<string, unknown>>;
  auth: Record<string, string>;
}

/** Prototype-less maps, so that a database or user named `__proto__` is stored, and then reported, as a name. */
export function emptyRawConfig(): RawConfig {
  const map = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;
  return { pgmux: map(), databases: map(), users: map(), peers: map(), auth: map() };
}

/** Names JavaScript objects treat specially; validation would silently drop them, so they are refused. */
const UNUSABLE_NAMES = ["__proto__"];

function unusableNameProblems(ctx: BuildContext, raw: RawConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const check = (parent: ConfigPath, names: string[]) => {
    for (const name of names.filter((n) => UNUSABLE_NAMES.includes(n))) {
      const path = [...parent, name];
      problems.push(configProblem(ctx.sources.locate(path), keyLabel(path), "this name cannot be used (rename it)"));
    }
  };
  check(["pgmux"], Object.keys(raw.pgmux));
  for (const section of ["databases", "users", "peers"] as const) {
    check([section], Object.keys(raw[section]));
    for (const [name, settings] of Object.entries(raw[section])) check([section, name], Object.keys(settings));
  }
  check(["auth"], Object.keys(raw.auth));
  return problems;
}

export interface LoadedConfig {
  readonly config: PgmuxConfig;
  readonly warnings: readonly ConfigWarning[];
  readonly sources: ConfigSources;
}

export interface BuildContext {
  readonly sources: ConfigSources;
  /** Problems the loader already found (syntax, unreadable files); reported together with the rest. */
  readonly problems: ConfigProblem[];
  /** Every secret seen while loading, so that none can reach an error message even by accident. */
  readonly secrets: Set<string>;
  /** The user list came inline (YAML `userlist:`) rather than from auth_file. */
  inlineUserlist: boolean;
}

/** How a person names the setting at `path`: general keys bare, the rest dotted (`databases.app.port`). */
export function keyLabel(path: ConfigPath): string {
  const parts = path.map(String);
  if (parts[0] === "pgmux") return parts.slice(1).join(".");
  if (parts[0] === "auth") return ["userlist", ...parts.slice(1)].join(".");
  return parts.join(".");
}

const SECTION_OF_KEY: readonly [keyof typeof KNOWN_KEYS, string][] = [
  ["pgmux", "a general setting: put it in [pgbouncer], or under pgmux: in YAML"],
  ["databases", "a per-database setting: put it in a [databases] connection string"],
  ["users", "a per-user setting: put it in a [users] entry"],
];

function unknownKeyProblem(ctx: BuildContext, parent: ConfigPath, key: string): ConfigProblem {
  const path = [...parent, key];
  const section = String(parent[0]) as keyof typeof KNOWN_KEYS;
  const known = parent.length === 0 ? Object.keys(PgmuxConfigSchema.shape) : (KNOWN_KEYS[section] ?? []);
  // A key that exists, just in another section, is a misplaced line rather than a typo.
  const elsewhere = SECTION_OF_KEY.find(([s]) => s !== section && KNOWN_KEYS[s].includes(key));
  const guess = closestKey(key, known);
  const hint =
    elsewhere !== undefined
      ? `it is ${elsewhere[1]}`
      : guess !== undefined
        ? `did you mean ${guess}?`
        : "remove it, or check the spelling against PgBouncer's documentation";
  return configProblem(ctx.sources.locate(path), keyLabel(path), `unknown setting (${hint})`);
}

function issueProblems(ctx: BuildContext, issue: z.core.$ZodIssue): ConfigProblem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => unknownKeyProblem(ctx, issue.path as ConfigPath, key));
  }
  const path = issue.path as ConfigPath;
  // Every schema field writes its own "(what to do)"; this only catches one that was missed.
  const message = issue.message.includes("(") ? issue.message : `${issue.message} (check this setting)`;
  return [configProblem(ctx.sources.locate(path), keyLabel(path), message)];
}

/** Renames PgBouncer's alias keys to the model's names, keeping their source lines. */
function applyAliases(
  ctx: BuildContext,
  section: Record<string, unknown>,
  aliases: Readonly<Record<string, string>>,
  parent: ConfigPath,
): void {
  for (const [alias, name] of Object.entries(aliases)) {
    if (!(alias in section)) continue;
    if (name in section) {
      const path = [...parent, alias];
      ctx.problems.push(
        configProblem(
          ctx.sources.locate(path),
          keyLabel(path),
          `is another name for ${name}, which is also set (keep only ${name})`,
        ),
      );
    } else {
      section[name] = section[alias];
      ctx.sources.set([...parent, name], ctx.sources.locate([...parent, alias]));
    }
    delete section[alias];
  }
}

function crossFieldProblems(ctx: BuildContext, c: PgmuxConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (path: ConfigPath) => ctx.sources.locate(path);
  const add = (path: ConfigPath, message: string) => problems.push(configProblem(at(path), keyLabel(path), message));
  const g = c.pgmux;

  const passwordAuth = g.auth_type === "md5" || g.auth_type === "scram-sha-256" || g.auth_type === "plain";
  const anyAuthUser = g.auth_user !== undefined || Object.values(c.databases).some((d) => d.auth_user !== undefined);
  if (passwordAuth && g.auth_file === undefined && !ctx.inlineUserlist && !anyAuthUser) {
    add(
      ["pgmux", "auth_type"],
      `${g.auth_type} checks passwords, but no user list is configured (set auth_file to a userlist.txt, or auth_user so that auth_query looks passwords up${ctx.sources.has(["pgmux", "auth_type"]) ? "" : "; md5 is PgBouncer's default auth_type"})`,
    );
  }
  if (g.auth_type === "hba" && g.auth_hba_file === undefined) {
    add(["pgmux", "auth_type"], "hba needs auth_hba_file (set auth_hba_file to a pg_hba.conf-style file)");
  }
  if (
    g.client_tls_sslmode !== "disable" &&
    (g.client_tls_key_file === undefined || g.client_tls_cert_file === undefined)
  ) {
    add(
      ["pgmux", "client_tls_sslmode"],
      `${g.client_tls_sslmode} needs a certificate (set client_tls_key_file and client_tls_cert_file)`,
    );
  }

  if (g.min_pool_size > g.default_pool_size) {
    add(
      ["pgmux", "min_pool_size"],
      `${g.min_pool_size} is larger than default_pool_size ${g.default_pool_size} (lower min_pool_size or raise default_pool_size)`,
    );
  }
  for (const [name, db] of Object.entries(c.databases)) {
    if ((RESERVED_DATABASE_NAMES as readonly string[]).includes(name)) {
      add(["databases", name], `the name ${name} is reserved for the admin console (rename this database)`);
    }
    if (name === "") add(["databases", name], "a database name is empty (give it a name)");
    if (db.min_pool_size === undefined && db.pool_size === undefined) continue;
    const min = db.min_pool_size ?? g.min_pool_size;
    const size = db.pool_size ?? g.default_pool_size;
    if (min > size) {
      add(
        ["databases", name, db.min_pool_size !== undefined ? "min_pool_size" : "pool_size"],
        `min_pool_size ${min} is larger than the pool size ${size} (lower min_pool_size or raise pool_size)`,
      );
    }
  }

  const wildcard = ["*", "0.0.0.0", "::"];
  const sharesAddress =
    wildcard.includes(g.admin_listen_addr) ||
    g.listen_addr.some((a) => wildcard.includes(a) || a === g.admin_listen_addr);
  if (g.admin_listen_port !== 0 && g.listen_port === g.admin_listen_port && sharesAddress) {
    add(
      ["pgmux", "admin_listen_port"],
      `is the same port as listen_port ${g.listen_port} on an overlapping address (pick another admin_listen_port)`,
    );
  }

  for (const id of Object.keys(c.peers)) {
    const n = Number(id);
    if (!/^\d+$/.test(id) || n < 1 || n > 65_535) {
      add(["peers", id], "a peer id must be a whole number from 1 to 65535 (use the other pooler's peer_id)");
    }
  }
  return problems;
}

function warningsFor(ctx: BuildContext, raw: RawConfig, c: PgmuxConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const notYet = (path: ConfigPath, name: string) =>
    warnings.push(
      configWarning(
        ctx.sources.locate(path),
        keyLabel(path),
        `${name} is accepted but not implemented yet; it has no effect (remove it to silence this warning)`,
      ),
    );

  const general: readonly string[] = UNIMPLEMENTED_KEYS.pgmux;
  for (const key of Object.keys(raw.pgmux)) {
    if (general.includes(key)) notYet(["pgmux", key], key);
  }
  const perDatabase: readonly string[] = UNIMPLEMENTED_KEYS.databases;
  for (const [name, db] of Object.entries(raw.databases)) {
    for (const key of Object.keys(db)) {
      if (perDatabase.includes(key)) notYet(["databases", name, key], `${key} (in databases.${name})`);
    }
  }
  const perUser: readonly string[] = UNIMPLEMENTED_KEYS.users;
  for (const [name, user] of Object.entries(raw.users)) {
    for (const key of Object.keys(user)) {
      if (perUser.includes(key)) notYet(["users", name, key], `${key} (in users.${name})`);
    }
  }
  const firstPeer = Object.keys(raw.peers)[0];
  if (firstPeer !== undefined) notYet(["peers", firstPeer], "the [peers] section");

  const authTypes: readonly string[] = UNIMPLEMENTED_VALUES.auth_type;
  if (authTypes.includes(c.pgmux.auth_type)) {
    const path = ["pgmux", "auth_type"];
    warnings.push(
      configWarning(
        ctx.sources.locate(path),
        "auth_type",
        `auth_type ${c.pgmux.auth_type} is accepted but not implemented yet; clients cannot log in with it (use trust, plain, md5 or scram-sha-256 for now)`,
      ),
    );
  }
  return warnings;
}

/** Replaces any secret that slipped into a message; short secrets are skipped, as they match ordinary words. */
function scrub(problem: ConfigProblem, secrets: ReadonlySet<string>): ConfigProblem {
  let message = problem.message;
  let key = problem.key;
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    message = message.split(secret).join("********");
    key = key.split(secret).join("********");
  }
  if (message === problem.message && key === problem.key) return problem;
  return configProblem(problem, key, message);
}

/** Sorts by file (in reading order) then line, so the list reads top to bottom; ties keep their order. */
function inFileOrder<T extends SourceLocation>(sources: ConfigSources, items: readonly T[]): T[] {
  const fileIndex = (at: SourceLocation) => {
    const i = sources.files.indexOf(at.file);
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => fileIndex(a.item) - fileIndex(b.item) || (a.item.line ?? 0) - (b.item.line ?? 0) || a.i - b.i)
    .map(({ item }) => item);
}

function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutUndefined) as T;
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = withoutUndefined(v);
  }
  return out as T;
}

/**
 * Turns what a loader read into the validated model: applies aliases and defaults, checks every field and
 * the rules that span fields, and collects warnings for accepted-but-unimplemented settings. Throws one
 * ConfigError with every problem (the loader's own included), in file and line order.
 */
export function buildConfig(raw: RawConfig, ctx: BuildContext): LoadedConfig {
  // Warnings name what the file says, so look before aliases rename anything.
  const asWritten: RawConfig = {
    pgmux: { ...raw.pgmux },
    databases: Object.fromEntries(Object.entries(raw.databases).map(([k, v]) => [k, { ...v }])),
    users: raw.users,
    peers: raw.peers,
    auth: raw.auth,
  };
  applyAliases(ctx, raw.pgmux, GENERAL_KEY_ALIASES, ["pgmux"]);
  for (const [name, db] of Object.entries(raw.databases)) {
    applyAliases(ctx, db, DATABASE_KEY_ALIASES, ["databases", name]);
  }

  const problems = [...ctx.problems, ...unusableNameProblems(ctx, raw)];
  const parsed = PgmuxConfigSchema.safeParse(raw);
  let config: PgmuxConfig | undefined;
  if (parsed.success) {
    config = withoutUndefined(parsed.data);
    problems.push(...crossFieldProblems(ctx, config));
  } else {
    for (const issue of parsed.error.issues) problems.push(...issueProblems(ctx, issue));
  }

  if (problems.length > 0 || config === undefined) {
    throw new ConfigError(inFileOrder(ctx.sources, problems).map((p) => scrub(p, ctx.secrets)));
  }
  return { config, warnings: inFileOrder(ctx.sources, warningsFor(ctx, asWritten, config)), sources: ctx.sources };
}
