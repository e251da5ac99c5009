import pg from "pg";
import { beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * When a server changes hands in each pool mode: session (when the client leaves, after DISCARD ALL) and
 * statement (after every statement; a transaction block is refused). Transaction mode is what every other
 * file runs in.
 */

type PgError = Error & { code?: string };

let pgServer: TestPostgres;

beforeAll(async () => {
  pgServer = await testPostgres();
});

describe("session mode", () => {
  test("a client keeps its server across transactions while another client has its own", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { poolMode: "session", defaultPoolSize: 2 } });
    const a = await connected(pooler);
    const b = await connected(pooler);
    try {
      const pidsA = new Set<number>();
      const pidsB = new Set<number>();
      for (let i = 0; i < 5; i++) {
        pidsA.add(await backendPid(a));
        await a.query("begin");
        pidsA.add(await backendPid(a));
        await a.query("commit");
        pidsB.add(await backendPid(b));
      }
      expect(pidsA.size).toBe(1);
      expect(pidsB.size).toBe(1);
      expect([...pidsA][0]).not.toBe([...pidsB][0]);
      // Even between transactions, a session-mode client's server is not idle in the pool.
      const pool = [...pooler.pooler.pools.values()][0]!;
      expect(pool.idleCount).toBe(0);
      expect(pool.active).toBe(2);
    } finally {
      await endAll(a, b);
      await stopWithin(pooler, 3000);
    }
  });

  test("the server is reset with DISCARD ALL when its client leaves: the next client sees nothing of the last one's session", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { poolMode: "session", defaultPoolSize: 1 } });
    const a = await connected(pooler);
    let b: pg.Client | null = null;
    try {
      const pidA = await backendPid(a);
      await a.query("set work_mem = '7777kB'");
      await a.query("create temp table left_behind (id int)");
      await a.query("select set_config('pgmux.test_marker', 'from A', false)");
      await a.query("prepare left_statement as select 1");
      await a.query("listen left_channel");
      expect((await a.query("show work_mem")).rows).toEqual([{ work_mem: "7777kB" }]);

      // With a pool of one, the next client waits for A's server and gets that very server.
      b = await connected(pooler);
      const waiting = b.query(
        `select pg_backend_pid() as pid,
                current_setting('work_mem') as work_mem,
                to_regclass('pg_temp.left_behind') is null as no_temp_table,
                coalesce(current_setting('pgmux.test_marker', true), '') as marker,
                (select count(*)::int from pg_prepared_statements) as prepared,
                (select count(*)::int from pg_listening_channels()) as listening`,
      );
      await a.end();
      const { rows } = await waiting;
      expect(rows).toEqual([
        { pid: pidA, work_mem: "4MB", no_temp_table: true, marker: "", prepared: 0, listening: 0 },
      ]);
    } finally {
      await endAll(a, b);
      await stopWithin(pooler, 3000);
    }
  });
});

describe("session mode, a client that vanishes", () => {
  test("inside a transaction: rolled back and reset before the next client gets the server", async () => {
    const table = `session_vanish_${process.pid}`;
    await pgServer.psql(`drop table if exists ${table}; create table ${table} (id int)`);
    const pooler = await startPooler({ postgres: pgServer, settings: { poolMode: "session", defaultPoolSize: 1 } });
    const a = await connected(pooler);
    let b: pg.Client | null = null;
    try {
      const pid = await backendPid(a);
      await a.query("set statement_timeout = '42s'");
      await a.query("begin");
      await a.query(`insert into ${table} values (1)`);
      b = await connected(pooler);
      const waiting = b.query(
        `select pg_backend_pid() as pid, current_setting('statement_timeout') as statement_timeout,
                (select count(*)::int from ${table}) as rows, now() = statement_timestamp() as fresh_transaction`,
      );
      (a as unknown as { connection: { stream: import("node:net").Socket } }).connection.stream.destroy();
      expect((await waiting).rows).toEqual([{ pid, statement_timeout: "0", rows: 0, fresh_transaction: true }]);
      expect(await pgServer.psql(`select count(*) from ${table}`)).toBe("0");
    } finally {
      await endAll(a, b);
      await stopWithin(pooler, 3000);
      await pgServer.psql(`drop table if exists ${table}`);
    }
  });
});

describe("statement mode", () => {
  test("autocommit statements work and the server changes hands after each one", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { poolMode: "statement", defaultPoolSize: 1 } });
    const a = await connected(pooler);
    const b = await connected(pooler);
    try {
      // Two clients taking turns on one server, statement by statement: in session mode b would wait for a
      // to leave; here each statement hands the server back.
      const pids = new Set<number>();
      for (let i = 0; i < 5; i++) {
        pids.add(await backendPid(a));
        pids.add(await backendPid(b));
      }
      expect(pids.size).toBe(1);
      // And at the same time: both clients keep querying, interleaved on the one server.
      const seen = await Promise.all(
        [a, b].map(async (c, who) => {
          const ns: number[] = [];
          for (let i = 0; i < 10; i++) ns.push((await c.query("select $1::int as n", [who * 100 + i])).rows[0].n);
          return ns;
        }),
      );
      expect(seen).toEqual([Array.from({ length: 10 }, (_, i) => i), Array.from({ length: 10 }, (_, i) => 100 + i)]);
    } finally {
      await endAll(a, b);
      await stopWithin(pooler, 3000);
    }
  });

  test("BEGIN closes the client with 0A000, and its server is rolled back and reused cleanly", async () => {
    const table = `stmt_mode_${process.pid}`;
    await pgServer.psql(`drop table if exists ${table}; create table ${table} (id int)`);
    const pooler = await startPooler({ postgres: pgServer, settings: { poolMode: "statement", defaultPoolSize: 1 } });
    const a = await connected(pooler);
    let b: pg.Client | null = null;
    try {
      const pid = await backendPid(a);
      const errors: PgError[] = [];
      a.on("error", (e) => errors.push(e));
      const ended = new Promise<void>((resolve) => a.once("end", () => resolve()));
      // One simple query that leaves a transaction open, with a row written in it.
      await a.query(`begin; insert into ${table} values (1)`).catch((e: PgError) => errors.push(e));
      await withDeadline(ended, 3000, "pgmux to close the client");
      const refused = errors.find((e) => e.code !== undefined);
      expect(refused?.code).toBe("0A000");
      expect(refused?.message).toBe(
        `transaction blocks are not allowed in statement pooling mode (pool "${pgServer.database}/${pgServer.user}")`,
      );

      await waitUntil(
        `backend ${pid} to be idle outside any transaction`,
        async () => (await pgServer.psql(`select state from pg_stat_activity where pid = ${pid}`)) === "idle",
        { timeoutMs: 5000, intervalMs: 50 },
      );
      expect(await pgServer.psql(`select count(*) from ${table}`)).toBe("0");
      b = await connected(pooler);
      // The same server, clean: an autocommit statement there ends idle (or statement mode would refuse b too).
      expect(await backendPid(b)).toBe(pid);
      expect((await b.query(`select count(*)::int as n from ${table}`)).rows).toEqual([{ n: 0 }]);
      await b.query(`insert into ${table} values (2)`);
      expect(await pgServer.psql(`select string_agg(id::text, ',') from ${table}`)).toBe("2");
    } finally {
      await endAll(a, b);
      await stopWithin(pooler, 3000);
      await pgServer.psql(`drop table if exists ${table}`);
    }
  });
});

// ---- helpers ------------------------------------------------------------------------------------------------

async function connected(pooler: PoolerInstance): Promise<pg.Client> {
  const client = new pg.Client(pooler.params());
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query("select pg_backend_pid() as pid")).rows[0].pid;
}

async function endAll(...clients: (pg.Client | null)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.end().catch(() => {})));
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** pooler.stop() bounded in time: true when it finished, false when it was still waiting after `ms`. */
async function stopWithin(pooler: PoolerInstance, ms: number): Promise<boolean> {
  return withDeadline(
    pooler.stop().then(() => true),
    ms,
    "pooler.stop()",
  ).catch(() => false);
}
