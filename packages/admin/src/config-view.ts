/**
 * What GET /v1/config shows: the loaded configuration through core's redactConfig when the admin server
 * was given one, else the engine's settings with every secret masked. Either way no password, userlist
 * secret or token leaves the process.
 */
import { type DatabaseSettings, type PgmuxConfig, type PoolerSettings, REDACTED, redactConfig } from "@pgmux/core";

/** Keys that hold secrets wherever they appear (redactConfig knows the model's; this catches new ones). */
const SECRET_KEY = /password|secret|token|ldap_options/i;

export type ConfigView =
  | { readonly source: "config"; readonly config: PgmuxConfig }
  | { readonly source: "settings"; readonly settings: Record<string, unknown> };

export function configView(config: PgmuxConfig | null, settings: PoolerSettings): ConfigView {
  if (config !== null) return { source: "config", config: maskSecretKeys(redactConfig(config)) as PgmuxConfig };
  return { source: "settings", settings: settingsView(settings) };
}

function maskSecretKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecretKeys);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && v !== undefined && v !== null && typeof v !== "object" ? REDACTED : maskSecretKeys(v);
  }
  return out;
}

function databaseView(db: DatabaseSettings): Record<string, unknown> {
  const { password, serverStartupParameters, ...rest } = db;
  return {
    ...rest,
    ...(password !== undefined ? { password: REDACTED } : {}),
    serverStartupParameters: Object.fromEntries(serverStartupParameters),
  };
}

/** The engine's settings as JSON: maps become objects, sets arrays, secrets "********". */
export function settingsView(s: PoolerSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(s)) {
    if (key === "users") {
      out.users = Object.fromEntries([...(value as ReadonlyMap<string, string>).keys()].map((u) => [u, REDACTED]));
    } else if (key === "databases") {
      out.databases = Object.fromEntries(
        [...(value as ReadonlyMap<string, DatabaseSettings>)].map(([name, db]) => [name, databaseView(db)]),
      );
    } else if (key === "fallbackDatabase") {
      out.fallbackDatabase = value === null ? null : databaseView(value as DatabaseSettings);
    } else if (value instanceof Map) {
      out[key] = Object.fromEntries(value);
    } else if (value instanceof Set) {
      out[key] = [...value];
    } else {
      out[key] = SECRET_KEY.test(key) ? REDACTED : value;
    }
  }
  return out;
}
