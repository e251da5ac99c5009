import type { Pooler } from "./pooler.js";
import type { PoolerSettings } from "./pooler-settings.js";

/** What a reload changed, for the log line and the admin API's answer. */
export interface ReloadReport {
  /** Database names that are new in this configuration. */
  readonly added: readonly string[];
  /** Database names that are gone: their pools drain. */
  readonly removed: readonly string[];
  /** Pools whose settings were re-applied (`db/user`). */
  readonly pools: readonly string[];
  /** Settings that changed but only take effect after a restart (the listeners). */
  readonly needRestart: readonly string[];
}

function databaseNames(s: PoolerSettings): Set<string> {
  const names = new Set(s.databases.keys());
  if (s.fallbackDatabase !== null) names.add("*");
  return names;
}

/**
 * Swaps the engine's settings for a reloaded configuration's and brings every existing pool in line:
 * - a pool whose database still resolves (its own entry, or the `*` fallback) takes the new mode and sizes
 *   now (Pool.applySettings: surplus servers close, more may open), and reconnects if its server moved;
 * - a pool whose database no longer resolves retires: clients finish their transaction and are closed;
 * - new databases need nothing: their pools are created on first use from the new settings.
 * The listeners stay as they are; a change there is reported as needing a restart. No client of a
 * database that is still configured is disconnected.
 */
export function reloadSettings(pooler: Pooler, next: PoolerSettings): ReloadReport {
  const previous = pooler.settings;
  pooler.settings = next;
  const before = databaseNames(previous);
  const after = databaseNames(next);
  const added = [...after].filter((n) => !before.has(n));
  const removed = [...before].filter((n) => !after.has(n));
  const pools: string[] = [];
  for (const pool of [...pooler.pools.values()]) {
    if (pool.retired) continue;
    const db = pooler.databaseFor(pool.database.name);
    if (db === null) {
      pool.retire();
    } else {
      pool.applySettings(db);
      pools.push(pool.name);
    }
  }
  const needRestart: string[] = [];
  if (previous.listenPort !== next.listenPort) needRestart.push("listen_port");
  if (previous.listenAddrs.join(",") !== next.listenAddrs.join(",")) needRestart.push("listen_addr");
  if (previous.unixSocketDir !== next.unixSocketDir) needRestart.push("unix_socket_dir");
  if (previous.unixSocketMode !== next.unixSocketMode) needRestart.push("unix_socket_mode");
  forgetRetiredPools(pooler);
  return { added, removed, pools, needRestart };
}

/** Drops retired pools that have no client and no server left (the janitor calls this on every sweep). */
export function forgetRetiredPools(pooler: Pooler): void {
  for (const [key, pool] of pooler.pools) {
    if (pool.retired && pool.empty) {
      pooler.pools.delete(key);
      pool.log.info("retired pool removed");
    }
  }
}
