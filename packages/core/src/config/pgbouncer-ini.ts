import { resolve } from "node:path";
import { applySettingOverrides, applyUserlistOverrides } from "./apply-overrides.js";
import { loadAuthFile } from "./auth-file.js";
import { type BuildContext, buildConfig, emptyRawConfig, type LoadedConfig } from "./build-config.js";
import { closestKey } from "./closest-key.js";
import { configProblem } from "./config-error.js";
import { type ConfigOverrides, NO_OVERRIDES } from "./config-overrides.js";
import { KNOWN_KEYS } from "./config-schema.js";
import { ConfigSources } from "./config-sources.js";
import { parseConnectionString } from "./connection-string.js";
import { type IniEntry, parseIni, type ReadTextFile, readTextFile } from "./ini-parser.js";

/** `[pgmux]` is accepted as a synonym, so a file can hold pgmux's own keys without looking like PgBouncer's. */
const GENERAL_SECTIONS = ["pgbouncer", "pgmux"];
const SECTIONS = [...GENERAL_SECTIONS, "databases", "users", "peers"];

type EntrySection = "databases" | "users" | "peers";

/**
 * Loads a PgBouncer configuration: the ini file, its `%include`s and the userlist its `auth_file` names.
 * Returns the validated model with warnings for settings pgmux accepts but does not act on yet; throws
 * ConfigError listing every problem as `file:line: key: what is wrong (what to do)`.
 */
export function loadPgbouncerIni(
  path: string,
  readFile: ReadTextFile = readTextFile,
  overrides: ConfigOverrides = NO_OVERRIDES,
): LoadedConfig {
  const main = resolve(path);
  const doc = parseIni(main, readFile);
  const sources = new ConfigSources(main);
  for (const file of doc.files) sources.addFile(file);
  const ctx: BuildContext = { sources, problems: [], secrets: new Set(), inlineUserlist: false };
  const raw = emptyRawConfig();

  for (const section of doc.sections) {
    if (SECTIONS.includes(section.name)) continue;
    const guess = closestKey(section.name, SECTIONS);
    ctx.problems.push(
      configProblem(
        section,
        `[${section.name}]`,
        `unknown section (${guess !== undefined ? `did you mean [${guess}]?` : `the sections are ${SECTIONS.map((s) => `[${s}]`).join(", ")}`})`,
      ),
    );
  }
  if (!doc.sections.some((s) => GENERAL_SECTIONS.includes(s.name))) {
    ctx.problems.push(
      configProblem(
        { file: main },
        "",
        "has no [pgbouncer] section (add one, even if empty; PgBouncer requires it too, and its absence usually means the wrong file)",
      ),
    );
  }

  for (const entry of doc.entries) {
    const name = entry.section.name;
    if (GENERAL_SECTIONS.includes(name)) {
      raw.pgmux[entry.key] = entry.value;
      sources.set(["pgmux", entry.key], { file: entry.file, line: entry.line });
    } else if (name === "databases" || name === "users" || name === "peers") {
      readEntry(raw[name], name, entry, ctx);
    }
    // Entries of an unknown section were reported with the section; reporting each would only repeat it.
  }

  applySettingOverrides(raw, ctx, overrides);
  loadAuthFile(raw, ctx, readFile);
  applyUserlistOverrides(raw, ctx, overrides);
  return buildConfig(raw, ctx);
}

function readEntry(
  target: Record<string, Record<string, unknown>>,
  section: EntrySection,
  entry: IniEntry,
  ctx: BuildContext,
): void {
  const parsed = parseConnectionString(entry.value, KNOWN_KEYS[section]);
  const label = `${section}.${entry.key}`;
  if (!parsed.ok) {
    ctx.problems.push(configProblem(entry, parsed.key === "" ? label : `${label}.${parsed.key}`, parsed.message));
    return;
  }
  const password = parsed.values.get("password");
  if (password !== undefined) ctx.secrets.add(password);
  // A repeated name replaces the earlier entry whole, as PgBouncer does on reload.
  target[entry.key] = Object.fromEntries(parsed.values);
  // Only file and line: the entry itself holds the value, which may be a password.
  ctx.sources.set([section, entry.key], { file: entry.file, line: entry.line });
}
