import { DEFAULT_SETTINGS, Pooler, type PoolerSettings } from "@pgmux/core";
import { pino } from "pino";
import type { PostgresConnectionParams } from "./test-postgres.js";

export interface PoolerInstanceOptions {
  /** The server every database of this pgmux points at (its "*" fallback entry). */
  readonly postgres: PostgresConnectionParams;
  /** Settings over the test defaults (transaction mode, scram-sha-256, the superuser in the user list). */
  readonly settings?: Partial<PoolerSettings>;
  /** Extra auth_file entries (name → secret); the PostgreSQL superuser is always there. */
  readonly users?: Readonly<Record<string, string>>;
}

export interface PoolerInstance {
  readonly pooler: Pooler;
  readonly host: string;
  readonly port: number;
  /** Connection parameters for a client of this pgmux (default: the superuser, its database). */
  params(overrides?: Partial<PostgresConnectionParams>): PostgresConnectionParams;
  url(overrides?: Partial<PostgresConnectionParams>): string;
  /** Total servers of every pool, in any state. */
  serverCount(): number;
  stop(): Promise<void>;
}

/**
 * Runs the pgmux engine in the test process on a free port, in front of `postgres`: what the integration
 * tests drive with real clients. Logs go nowhere unless PGMUX_TEST_LOG names a level.
 */
export async function startPooler(options: PoolerInstanceOptions): Promise<PoolerInstance> {
  const pg = options.postgres;
  const users = new Map<string, string>([[pg.user, pg.password]]);
  for (const [name, secret] of Object.entries(options.users ?? {})) users.set(name, secret);
  const settings: PoolerSettings = {
    ...DEFAULT_SETTINGS,
    listenAddrs: ["127.0.0.1"],
    listenPort: 0,
    authType: "scram-sha-256",
    poolMode: "transaction",
    users,
    fallbackDatabase: {
      name: "*",
      host: pg.host,
      port: pg.port,
      dbname: "*",
      serverStartupParameters: new Map(),
    },
    queryWaitTimeoutMs: 30_000,
    ...options.settings,
  };
  const log = pino({ level: process.env.PGMUX_TEST_LOG ?? "silent" });
  const pooler = new Pooler({ settings, log });
  await pooler.start();
  const address = pooler.addresses[0]!;
  const host = address.host!;
  const port = address.port!;
  const params = (overrides: Partial<PostgresConnectionParams> = {}): PostgresConnectionParams => ({
    host,
    port,
    user: pg.user,
    password: pg.password,
    database: pg.database,
    ...overrides,
  });
  return {
    pooler,
    host,
    port,
    params,
    url(overrides = {}) {
      const p = params(overrides);
      return `postgres://${encodeURIComponent(p.user)}:${encodeURIComponent(p.password)}@${p.host}:${p.port}/${encodeURIComponent(p.database)}`;
    },
    serverCount() {
      let n = 0;
      for (const pool of pooler.pools.values()) n += pool.servers.size;
      return n;
    },
    stop: () => pooler.stop(),
  };
}
