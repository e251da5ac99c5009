import { resolve } from "node:path";
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import { applySettingOverrides, applyUserlistOverrides } from "./apply-overrides.js";
import { loadAuthFile } from "./auth-file.js";
import { type BuildContext, buildConfig, emptyRawConfig, type LoadedConfig } from "./build-config.js";
import { closestKey } from "./closest-key.js";
import { ConfigError, configProblem } from "./config-error.js";
import { type ConfigOverrides, NO_OVERRIDES } from "./config-overrides.js";
import { KNOWN_KEYS } from "./config-schema.js";
import { type ConfigPath, ConfigSources } from "./config-sources.js";
import { parseConnectionString } from "./connection-string.js";
import { describeReadError, type ReadTextFile, readTextFile } from "./ini-parser.js";

/**
 * pgmux's native form. The same key names as pgbouncer.ini, grouped the same way:
 *
 * ```yaml
 * pgmux:            # the [pgbouncer] section
 *   listen_addr: "*"
 *   auth_file: userlist.txt
 * databases:        # a map of settings, or the same connection string an ini file would hold
 *   app: { host: db.internal, pool_size: 40 }
 *   "*": "host=db.internal"
 * users:
 *   reporting: { pool_mode: session }
 * userlist:         # instead of auth_file: user name -> secret
 *   alice: "SCRAM-SHA-256$4096:..."
 * ```
 *
 * Durations are numbers of seconds, as in the ini. Write unix_socket_mode as 0777 or "0777": YAML itself
 * would read 0777 as decimal, so the loader looks at the source text for that one key.
 */

const TOP_LEVEL = ["pgmux", "databases", "users", "peers", "userlist"];
type EntrySection = "databases" | "users" | "peers";

/** The YAML's top-level `userlist:` is the model's `auth`. */
function modelPath(path: readonly string[]): ConfigPath {
  return path[0] === "userlist" ? ["auth", ...path.slice(1)] : path;
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `key:` with nothing after it is YAML's null; like an empty ini value, it leaves the setting at its default. */
function withoutNulls(map: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(map)) if (v !== null) out[k] = v;
  return out;
}

/** A YAML error's own headline, without the source excerpt it appends (which may show a password). */
function yamlHeadline(message: string): string {
  const first = message.split("\n")[0] ?? "";
  const cut = first.indexOf(" at line ");
  return (cut >= 0 ? first.slice(0, cut) : first).slice(0, 120);
}

export function loadPgmuxYaml(
  path: string,
  readFile: ReadTextFile = readTextFile,
  overrides: ConfigOverrides = NO_OVERRIDES,
): LoadedConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new ConfigError([
      configProblem({ file }, "", `cannot read the configuration file: ${describeReadError(err)} (check the path)`),
    ]);
  }
  const sources = new ConfigSources(file);
  sources.addFile(file);
  const ctx: BuildContext = { sources, problems: [], secrets: new Set(), inlineUserlist: false };

  const lineCounter = new LineCounter();
  // merge: `<<: *defaults` is the usual way to share settings between database entries.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const line = lineCounter.linePos(e.pos[0]).line;
        return configProblem({ file, line }, "", `${yamlHeadline(e.message)} (fix the YAML syntax)`);
      }),
    );
  }

  // Where each key was written, and the source text of unix_socket_mode (see the module comment).
  let socketModeText: string | undefined;
  const record = (node: unknown, path: readonly string[]) => {
    if (!isMap(node) || path.length > 2) return;
    for (const pair of node.items) {
      if (!isScalar(pair.key) || pair.key.range == null) continue;
      const keyPath = [...path, String(pair.key.value)];
      sources.set(modelPath(keyPath), { file, line: lineCounter.linePos(pair.key.range[0]).line });
      const value = pair.value;
      if (keyPath.join(".") === "pgmux.unix_socket_mode" && isScalar(value) && value.range != null) {
        socketModeText = text.slice(value.range[0], value.range[1]).trim();
      }
      record(value, keyPath);
    }
  };
  record(doc.contents, []);

  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: 1000 });
  } catch {
    throw new ConfigError([configProblem({ file }, "", "YAML aliases expand too far (write the values out)")]);
  }
  if (js === null || js === undefined) js = {};
  if (!isPlainMap(js)) {
    throw new ConfigError([
      configProblem(
        { file },
        "",
        "the file must be a YAML map (write top-level keys pgmux:, databases:, users:, each holding a map)",
      ),
    ]);
  }

  const raw = emptyRawConfig();
  for (const [key, value] of Object.entries(js)) {
    const at = sources.locate([key]);
    if (!TOP_LEVEL.includes(key)) {
      const guess = closestKey(key, TOP_LEVEL);
      const hint =
        guess !== undefined
          ? `did you mean ${guess}?`
          : KNOWN_KEYS.pgmux.includes(key)
            ? "general settings go under pgmux:"
            : `the top-level keys are ${TOP_LEVEL.join(", ")}`;
      ctx.problems.push(configProblem(at, key, `unknown setting (${hint})`));
      continue;
    }
    if (value === null || value === undefined) continue;
    if (!isPlainMap(value)) {
      ctx.problems.push(configProblem(at, key, "must be a map of settings (indent the settings under it)"));
      continue;
    }
    if (key === "pgmux") {
      Object.assign(raw.pgmux, withoutNulls(value));
      if (socketModeText !== undefined && /^0[0-7]+$/.test(socketModeText)) raw.pgmux.unix_socket_mode = socketModeText;
    } else if (key === "userlist") {
      ctx.inlineUserlist = true;
      readUserlist(raw.auth, value, ctx);
    } else {
      readEntries(raw[key as EntrySection], key as EntrySection, value, ctx);
    }
  }

  applySettingOverrides(raw, ctx, overrides);
  if (ctx.inlineUserlist && raw.pgmux.auth_file !== undefined) {
    ctx.problems.push(
      configProblem(
        sources.locate(["auth"]),
        "userlist",
        "is set together with auth_file (keep one: the inline userlist or the auth_file)",
      ),
    );
  } else {
    loadAuthFile(raw, ctx, readFile);
  }
  applyUserlistOverrides(raw, ctx, overrides);
  return buildConfig(raw, ctx);
}

function readEntries(
  target: Record<string, Record<string, unknown>>,
  section: EntrySection,
  entries: Record<string, unknown>,
  ctx: BuildContext,
): void {
  for (const [name, value] of Object.entries(entries)) {
    const path = [section, name];
    let settings: Record<string, unknown>;
    if (value === null || value === undefined) {
      settings = {};
    } else if (isPlainMap(value)) {
      settings = withoutNulls(value);
    } else if (typeof value === "string") {
      const parsed = parseConnectionString(value, KNOWN_KEYS[section]);
      if (!parsed.ok) {
        const label = parsed.key === "" ? path.join(".") : [...path, parsed.key].join(".");
        ctx.problems.push(configProblem(ctx.sources.locate(path), label, parsed.message));
        continue;
      }
      settings = Object.fromEntries(parsed.values);
    } else {
      ctx.problems.push(
        configProblem(
          ctx.sources.locate(path),
          path.join("."),
          "must be a map of settings or a connection string (write e.g. { host: db, port: 5432 })",
        ),
      );
      continue;
    }
    if (typeof settings.password === "string") ctx.secrets.add(settings.password);
    target[name] = settings;
  }
}

function readUserlist(target: Record<string, string>, entries: Record<string, unknown>, ctx: BuildContext): void {
  for (const [user, secret] of Object.entries(entries)) {
    if (typeof secret !== "string") {
      ctx.problems.push(
        configProblem(
          ctx.sources.locate(["auth", user]),
          `userlist.${user}`,
          "the secret must be text (put it in quotes, so YAML does not turn it into a number or a date)",
        ),
      );
      continue;
    }
    ctx.secrets.add(secret);
    target[user] = secret;
  }
}
