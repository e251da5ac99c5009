import { extname, resolve } from "node:path";
import { applySettingOverrides, applyUserlistOverrides } from "./apply-overrides.js";
import { loadAuthFile } from "./auth-file.js";
import { type BuildContext, buildConfig, emptyRawConfig, type LoadedConfig } from "./build-config.js";
import { ConfigError, configProblem } from "./config-error.js";
import { type ConfigOverrides, NO_OVERRIDES } from "./config-overrides.js";
import { ConfigSources } from "./config-sources.js";
import { describeReadError, type ReadTextFile, readTextFile } from "./ini-parser.js";
import { loadPgbouncerIni } from "./pgbouncer-ini.js";
import { loadPgmuxYaml } from "./pgmux-yaml.js";

export const ConfigFormat = { PgbouncerIni: "pgbouncer-ini", PgmuxYaml: "pgmux-yaml" } as const;
export type ConfigFormat = (typeof ConfigFormat)[keyof typeof ConfigFormat];

const INI_EXTENSIONS = [".ini", ".conf", ".cfg"];
const YAML_EXTENSIONS = [".yaml", ".yml"];

/** A `[section]` line or a `%include`: no YAML document starts like that, every pgbouncer.ini has one. */
const INI_LINE = /^[ \t]*(\[[^\]\n]+\][ \t]*([;#].*)?|%include[ \t].*)$/m;

/**
 * Which loader a file needs: by extension when it says, else by content, because configs mounted from a
 * secret or a ConfigMap often have no extension at all.
 */
export function detectConfigFormat(path: string, text: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  if (INI_EXTENSIONS.includes(ext)) return ConfigFormat.PgbouncerIni;
  if (YAML_EXTENSIONS.includes(ext)) return ConfigFormat.PgmuxYaml;
  return INI_LINE.test(text) ? ConfigFormat.PgbouncerIni : ConfigFormat.PgmuxYaml;
}

/**
 * Loads `pgmux --config FILE`: a pgbouncer.ini (with its includes and auth_file) or a pgmux.yaml, into the
 * one validated model. Throws ConfigError, and only ConfigError, for anything wrong with the files; its
 * message lists every problem as `file:line: key: what is wrong (what to do)` and never contains a secret.
 */
export function loadConfig(
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
  // Hand the text already read to the loader, so a file replaced in between cannot be half of each.
  const once: ReadTextFile = (p) => (p === file ? text : readFile(p));
  return detectConfigFormat(file, text) === ConfigFormat.PgbouncerIni
    ? loadPgbouncerIni(file, once, overrides)
    : loadPgmuxYaml(file, once, overrides);
}

/** What problems name as the "file" of a default, when pgmux runs from the environment and flags alone. */
export const NO_CONFIG_FILE = "(no configuration file)";

/**
 * The configuration from the defaults, the environment and the flags only: `pgmux` with no file, as a
 * container runs it with `DATABASE_URL` or `PGMUX_*` variables. Same checks and errors as loadConfig.
 */
export function loadConfigWithoutFile(overrides: ConfigOverrides, readFile: ReadTextFile = readTextFile): LoadedConfig {
  const sources = new ConfigSources(NO_CONFIG_FILE);
  const ctx: BuildContext = { sources, problems: [], secrets: new Set(), inlineUserlist: false };
  const raw = emptyRawConfig();
  applySettingOverrides(raw, ctx, overrides);
  loadAuthFile(raw, ctx, readFile);
  applyUserlistOverrides(raw, ctx, overrides);
  return buildConfig(raw, ctx);
}
