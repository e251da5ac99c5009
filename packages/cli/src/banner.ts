import type { PgmuxConfig, Pooler } from "@pgmux/core";

/** The start-up line's fields: what runs, where clients and operators reach it, and which pools it serves. */
export function bannerFields(options: {
  version: string;
  config: PgmuxConfig;
  configFile: string | undefined;
  pooler: Pooler;
  adminUrl: string;
}): Record<string, unknown> {
  const listen = options.pooler.addresses.map((a) => (a.path !== undefined ? `unix:${a.path}` : `${a.host}:${a.port}`));
  return bannerFromConfig(options.version, options.config, options.configFile, listen, options.adminUrl);
}

export function bannerFromConfig(
  version: string,
  config: PgmuxConfig,
  configFile: string | undefined,
  listen: readonly string[],
  adminUrl: string,
): Record<string, unknown> {
  const options = { version, config, configFile, adminUrl };
  const g = config.pgmux;
  const databases = Object.entries(options.config.databases).map(([name, db]) => ({
    name,
    server: `${db.host ?? "(local socket)"}:${db.port}/${db.dbname ?? (name === "*" ? "(as asked)" : name)}`,
    pool_mode: db.pool_mode ?? g.pool_mode,
    pool_size: db.pool_size ?? g.default_pool_size,
    ...(db.user !== undefined ? { user: db.user } : {}),
  }));
  return {
    version: options.version,
    node: process.version,
    pid: process.pid,
    config: options.configFile ?? "(environment and flags only)",
    listen,
    admin: options.adminUrl,
    auth_type: g.auth_type,
    users: Object.keys(options.config.auth).length,
    databases,
  };
}
