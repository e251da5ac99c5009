import {
  type ConfigOverrides,
  type ConfigWarning,
  combineOverrides,
  envOverrides,
  flagOverrides,
  type LoadedConfig,
  loadConfig,
  loadConfigWithoutFile,
} from "@pgmux/core";

export interface EffectiveConfig {
  readonly loaded: LoadedConfig;
  /** The file's warnings, then the environment's (a PGMUX_ variable that names no setting). */
  readonly warnings: readonly ConfigWarning[];
}

/**
 * The configuration pgmux runs on: defaults < FILE < environment < --set flags. Read again, whole, on
 * every reload, so a reload sees the environment and flags pgmux started with laid over the new file.
 * Throws ConfigError listing every problem (file:line: key: …, or env NAME: key: …) without secrets.
 */
export function loadEffectiveConfig(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  set: readonly string[],
): EffectiveConfig {
  const overrides: ConfigOverrides = combineOverrides(envOverrides(env), flagOverrides(set));
  const loaded = file === undefined ? loadConfigWithoutFile(overrides) : loadConfig(file, undefined, overrides);
  return { loaded, warnings: [...loaded.warnings, ...overrides.warnings] };
}
