/**
 * PgBouncer's SQL admin console on a running pgmux, driven by psql and pg: `psql -d pgbouncer -c 'SHOW
 * POOLS'` returns PgBouncer 1.18's columns, stats users may only read, unknown commands and the extended
 * protocol are refused with their SQLSTATEs.
 *
 * Needs the engine hooks (ClientSession.adminConsole in client-session.ts; adminUsers/statsUsers in the
 * settings): until they are wired, logging in to the console database fails and so do these tests.
 */
import { join } from "node:path";
import { AdminServer } from "@pgmux/admin";
import type { PoolerSettings } from "@pgmux/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, runCommand, type TestPostgres, testPostgres } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

const STATS_USER = "console_watcher";
const STATS_PASSWORD = "watcher secret";
/** In the auth file, but neither an admin nor a stats user. */
const PLAIN_USER = "console_plain";
const PLAIN_PASSWORD = "plain secret";

/** admin_users and stats_users as the engine's settings carry them (typed loosely until they exist). */
function consoleUsers(admins: string[], stats: string[]): Partial<PoolerSettings> {
  return { adminUsers: new Set(admins), statsUsers: new Set(stats) } as unknown as Partial<PoolerSettings>;
}

describe("the SQL admin console", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;
  let psqlPath: string;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({
      postgres: server,
      users: { [STATS_USER]: STATS_PASSWORD, [PLAIN_USER]: PLAIN_PASSWORD },
      settings: { defaultPoolSize: 3, ...consoleUsers([server.user], [STATS_USER]) },
    });
    // The admin server gives the console its control (the same one the HTTP actions use).
    admin = new AdminServer({ pooler: instance.pooler, port: 0, processMetrics: false });
    psqlPath = join(findPgBinDir(), "psql");
  });

  afterAll(async () => {
    await admin?.close();
    await instance?.stop();
  });

  /** psql against the console: unaligned, with a header line, as `user`. */
  async function psql(sql: string, user = server.user, password = server.password, database = "pgbouncer") {
    const result = await runCommand(
      psqlPath,
      ["-X", "-A", "-F", "|", "-h", instance.host, "-p", String(instance.port), "-U", user, "-d", database, "-c", sql],
      { timeoutMs: 20_000, env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "10" } },
    );
    return result;
  }

  function table(stdout: string): { columns: string[]; rows: string[][] } {
    const lines = stdout.trim().split("\n");
    const columns = lines[0]!.split("|");
    // psql ends the output with "(N rows)".
    const rows = lines.slice(1, -1).map((l) => l.split("|"));
    return { columns, rows };
  }

  test("psql -d pgbouncer -c 'SHOW POOLS' returns PgBouncer 1.18's columns and the running pool", async () => {
    // A pool to show: a client of pgmux that has run something.
    const app = new pg.Client(instance.params());
    await app.connect();
    await app.query("SELECT 1");
    try {
      const result = await psql("SHOW POOLS");
      expect(result.code, result.stderr).toBe(0);
      const { columns, rows } = table(result.stdout);
      expect(columns).toEqual([
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "cl_active_cancel_req",
        "cl_waiting_cancel_req",
        "sv_active",
        "sv_active_cancel",
        "sv_being_canceled",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
        "maxwait_us",
        "pool_mode",
      ]);
      const row = rows.find((r) => r[0] === server.database && r[1] === server.user);
      expect(row).toBeDefined();
      expect(row![2]).toBe("1"); // cl_active: the pg client
      expect(row![15]).toBe("transaction");
    } finally {
      await app.end();
    }
  });

  test("SHOW STATS, CLIENTS, SERVERS, DATABASES, LISTS, CONFIG and VERSION answer with their documented columns", async () => {
    const expected: Record<string, string[]> = {
      STATS: [
        "database",
        "total_xact_count",
        "total_query_count",
        "total_received",
        "total_sent",
        "total_xact_time",
        "total_query_time",
        "total_wait_time",
        "avg_xact_count",
        "avg_query_count",
        "avg_recv",
        "avg_sent",
        "avg_xact_time",
        "avg_query_time",
        "avg_wait_time",
      ],
      STATS_TOTALS: [
        "database",
        "xact_count",
        "query_count",
        "bytes_received",
        "bytes_sent",
        "xact_time",
        "query_time",
        "wait_time",
      ],
      CLIENTS: [
        "type",
        "user",
        "database",
        "state",
        "addr",
        "port",
        "local_addr",
        "local_port",
        "connect_time",
        "request_time",
        "wait",
        "wait_us",
        "close_needed",
        "ptr",
        "link",
        "remote_pid",
        "tls",
        "application_name",
      ],
      DATABASES: [
        "name",
        "host",
        "port",
        "database",
        "force_user",
        "pool_size",
        "min_pool_size",
        "reserve_pool",
        "pool_mode",
        "max_connections",
        "current_connections",
        "paused",
        "disabled",
      ],
      LISTS: ["list", "items"],
      USERS: ["name", "pool_mode"],
      CONFIG: ["key", "value", "default", "changeable"],
      VERSION: ["version"],
      STATE: ["key", "value"],
    };
    for (const [command, columns] of Object.entries(expected)) {
      const result = await psql(`SHOW ${command}`, STATS_USER, STATS_PASSWORD);
      expect(result.code, `${command}: ${result.stderr}`).toBe(0);
      expect(table(result.stdout).columns, command).toEqual(columns);
    }
    const version = table((await psql("SHOW VERSION")).stdout).rows[0]![0];
    expect(version).toMatch(/^PgBouncer 1\.18\.0 \(pgmux /);
    const clients = table((await psql("SHOW CLIENTS")).stdout);
    // The console session itself is a client, on database pgbouncer.
    expect(clients.rows.some((r) => r[2] === "pgbouncer" && r[0] === "C")).toBe(true);
  });

  test("the console's columns carry PgBouncer's types: text, int4 counts, numeric statistics", async () => {
    const c = new pg.Client({ ...instance.params(), database: "pgbouncer" });
    await c.connect();
    try {
      const pools = await c.query({ text: "SHOW POOLS", queryMode: "simple" } as pg.QueryConfig);
      expect(pools.fields.map((f) => [f.name, f.dataTypeID]).slice(0, 4)).toEqual([
        ["database", 25],
        ["user", 25],
        ["cl_active", 23],
        ["cl_waiting", 23],
      ]);
      const stats = await c.query({ text: "SHOW STATS_TOTALS", queryMode: "simple" } as pg.QueryConfig);
      expect(stats.fields.every((f, i) => f.dataTypeID === (i === 0 ? 25 : 1700))).toBe(true);
    } finally {
      await c.end();
    }
  });

  test("a stats user cannot PAUSE (42501); an admin's unknown command is a 42601 naming it", async () => {
    const paused = await psql("PAUSE", STATS_USER, STATS_PASSWORD);
    expect(paused.code).not.toBe(0);
    expect(paused.stderr).toContain("admin access needed");
    const c = new pg.Client({ ...instance.params(), database: "pgbouncer" });
    await c.connect();
    try {
      const bad = await c.query("SHOW FROGS").catch((e: Error & { code?: string }) => e);
      expect(bad).toMatchObject({ code: "42601", message: "invalid command 'SHOW FROGS', use SHOW HELP;" });
      const stats = new pg.Client({
        ...instance.params(),
        user: STATS_USER,
        password: STATS_PASSWORD,
        database: "pgbouncer",
      });
      await stats.connect();
      try {
        expect(await stats.query("PAUSE").catch((e: Error & { code?: string }) => e.code)).toBe("42501");
      } finally {
        await stats.end();
      }
    } finally {
      await c.end();
    }
  });

  test("the extended protocol is refused with 08P01 and the session goes on", async () => {
    const c = new pg.Client({ ...instance.params(), database: "pgbouncer" });
    await c.connect();
    try {
      const err = await c
        .query({ text: "SHOW POOLS", queryMode: "extended" } as pg.QueryConfig)
        .catch((e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: "08P01", message: "admin console supports simple query only" });
      const after = await c.query("SHOW VERSION");
      expect(after.rows).toHaveLength(1);
    } finally {
      await c.end();
    }
  });

  test("a user in neither admin_users nor stats_users cannot log in to the console; pgmux is a console name too", async () => {
    const viaPgmux = await psql("SHOW POOLS", STATS_USER, STATS_PASSWORD, "pgmux");
    expect(viaPgmux.code, viaPgmux.stderr).toBe(0);
    const plain = await psql("SHOW POOLS", PLAIN_USER, PLAIN_PASSWORD);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain(`user "${PLAIN_USER}" may not use the admin console`);
  });

  test("KILL_CLIENT disconnects a client by the id SHOW CLIENTS gives as ptr", async () => {
    const victim = new pg.Client({ ...instance.params(), application_name: "console-victim" });
    victim.on("error", () => {});
    await victim.connect();
    const clients = table((await psql("SHOW CLIENTS")).stdout);
    const row = clients.rows.find((r) => r[17] === "console-victim");
    expect(row).toBeDefined();
    const kill = await psql(`KILL_CLIENT ${row![13]}`);
    expect(kill.code, kill.stderr).toBe(0);
    const err = await victim.query("SELECT 1").then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    await victim.end().catch(() => {});
  });
});
