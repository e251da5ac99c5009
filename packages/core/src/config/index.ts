export type { BuildContext, LoadedConfig, RawConfig } from "./build-config.js";
export {
  ConfigError,
  type ConfigProblem,
  type ConfigWarning,
  configProblem,
  configWarning,
  type SourceLocation,
} from "./config-error.js";
export {
  type ConfigOverride,
  type ConfigOverrides,
  combineOverrides,
  databaseUrlOverrides,
  envOverrides,
  flagOverrides,
  NO_OVERRIDES,
  SECRET_SETTINGS,
} from "./config-overrides.js";
export {
  AUTH_TYPES,
  type AuthType,
  type DatabaseConfig,
  DEFAULT_AUTH_QUERY,
  type GeneralSettings,
  KNOWN_KEYS,
  LOAD_BALANCE_HOSTS,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogLevel,
  type PeerConfig,
  type PgmuxConfig,
  PgmuxConfigSchema,
  POOL_MODES,
  type PoolMode,
  RESERVED_DATABASE_NAMES,
  SSL_MODES,
  TARGET_SESSION_ATTRS,
  type UserConfig,
} from "./config-schema.js";
export { type ConfigPath, ConfigSources } from "./config-sources.js";
export { type ConnectionStringResult, parseConnectionString } from "./connection-string.js";
export {
  type IniDocument,
  type IniEntry,
  type IniSection,
  parseIni,
  parseIniText,
  type ReadTextFile,
} from "./ini-parser.js";
export { ConfigFormat, detectConfigFormat, loadConfig, loadConfigWithoutFile, NO_CONFIG_FILE } from "./load-config.js";
export { loadPgbouncerIni } from "./pgbouncer-ini.js";
export { loadPgmuxYaml } from "./pgmux-yaml.js";
export { REDACTED, redactConfig } from "./redact-config.js";
export { UNIMPLEMENTED_KEYS, UNIMPLEMENTED_VALUES } from "./unimplemented-keys.js";
export { parseUserlist, SecretKind, type UserlistEntry, userlistSecretKind } from "./userlist.js";
