import type { DatabaseSettings, PoolerSettings, UserSettings } from "./pooler-settings.js";

/**
 * Worker `index`'s part of a limit shared by `count` workers: the limit divided as evenly as whole numbers
 * allow (the first workers take the remainder), so the parts add up to the configured figure. A limit of 0
 * (none) stays 0; a positive one never drops to 0 (which would read as "none", or as a pool with no server).
 */
export function workerShare(limit: number, index: number, count: number, atLeastOne = true): number {
  if (limit <= 0 || count <= 1) return limit;
  const share = Math.floor(limit / count) + (index < limit % count ? 1 : 0);
  return atLeastOne ? Math.max(1, share) : share;
}

/**
 * The settings one of `count` worker processes runs on (workers: N). Each worker has its own pools, so the
 * pool sizes and connection limits are divided among the workers; everything else is the same. Only
 * worker 0 listens on the Unix socket (SO_REUSEPORT spreads TCP connections only).
 */
export function settingsForWorker(s: PoolerSettings, index: number, count: number): PoolerSettings {
  if (count <= 1) return s;
  const share = (n: number, atLeastOne = true) => workerShare(n, index, count, atLeastOne);
  const optional = (n: number | undefined, atLeastOne = true) => (n === undefined ? undefined : share(n, atLeastOne));
  const database = (d: DatabaseSettings): DatabaseSettings => {
    const out: { -readonly [K in keyof DatabaseSettings]: DatabaseSettings[K] } = { ...d };
    const poolSize = optional(d.poolSize);
    const minPoolSize = optional(d.minPoolSize, false);
    const reservePoolSize = optional(d.reservePoolSize, false);
    const maxDbConnections = optional(d.maxDbConnections);
    if (poolSize !== undefined) out.poolSize = poolSize;
    if (minPoolSize !== undefined) out.minPoolSize = minPoolSize;
    if (reservePoolSize !== undefined) out.reservePoolSize = reservePoolSize;
    if (maxDbConnections !== undefined) out.maxDbConnections = maxDbConnections;
    return out;
  };
  const user = (u: UserSettings): UserSettings => {
    const out: { -readonly [K in keyof UserSettings]: UserSettings[K] } = { ...u };
    const poolSize = optional(u.poolSize);
    const maxUserConnections = optional(u.maxUserConnections);
    if (poolSize !== undefined) out.poolSize = poolSize;
    if (maxUserConnections !== undefined) out.maxUserConnections = maxUserConnections;
    return out;
  };
  return {
    ...s,
    unixSocketDir: index === 0 ? s.unixSocketDir : "",
    maxClientConn: share(s.maxClientConn),
    defaultPoolSize: share(s.defaultPoolSize),
    minPoolSize: share(s.minPoolSize, false),
    reservePoolSize: share(s.reservePoolSize, false),
    maxDbConnections: share(s.maxDbConnections),
    maxUserConnections: share(s.maxUserConnections),
    databases: new Map([...s.databases].map(([name, d]) => [name, database(d)])),
    fallbackDatabase: s.fallbackDatabase === null ? null : database(s.fallbackDatabase),
    userSettings: new Map([...s.userSettings].map(([name, u]) => [name, user(u)])),
  };
}
