import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Session state under transaction pooling: SETs made outside a transaction follow the client to whichever
 * server it gets and never reach another client; state that cannot follow it (LISTEN, advisory locks,
 * temporary tables, held cursors, SQL PREPARE, LOAD) keeps its server with it until undone. Which server
 * serves a transaction is read from pg_backend_pid(); another client holding a server inside a
 * transaction forces the next transaction elsewhere.
 */

let server: TestPostgres;

beforeAll(async () => {
  server = await testPostgres();
});

const ignore = () => {};

async function connect(instance: PoolerInstance): Promise<pg.Client> {
  const client = new pg.Client(instance.params());
  client.on("error", ignore);
  await client.connect();
  return client;
}

async function one(client: pg.Client, sql: string): Promise<string> {
  const r = await client.query<Record<string, unknown>>(sql);
  return String(Object.values(r.rows[0]!)[0]);
}

async function pid(client: pg.Client): Promise<string> {
  return one(client, "select pg_backend_pid()");
}

function poolOf(instance: PoolerInstance) {
  return [...instance.pooler.pools.values()][0]!;
}

/** Servers lent to a client right now (a pinned client keeps one between its transactions). */
function lentServers(instance: PoolerInstance): number {
  return [...poolOf(instance).servers].filter((s) => s.client !== null).length;
}

describe("SETs follow the client, and only the client", () => {
  let instance: PoolerInstance;

  beforeAll(async () => {
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2 } });
  });
  afterAll(async () => {
    await instance.stop();
  });

  /** Runs `body` while another client holds a server inside a transaction: `client` gets the other one. */
  async function elsewhere<T>(body: () => Promise<T>): Promise<T> {
    const holder = await connect(instance);
    try {
      await holder.query("begin");
      return await body();
    } finally {
      await holder.query("rollback").catch(ignore);
      await holder.end().catch(ignore);
    }
  }

  test("a SET outside a transaction is there on the next server; another client never sees it", async () => {
    const client = await connect(instance);
    const other = await connect(instance);
    try {
      await client.query("set statement_timeout = '4321ms'");
      await client.query("select set_config('pgmux_test.tenant', 'acme', false)");
      const first = await pid(client);
      const { moved, timeout, tenant } = await elsewhere(async () => ({
        moved: (await pid(client)) !== first,
        timeout: await one(client, "show statement_timeout"),
        tenant: await one(client, "select current_setting('pgmux_test.tenant')"),
      }));
      expect(moved).toBe(true);
      expect(timeout).toBe("4321ms");
      expect(tenant).toBe("acme");
      // Whatever server the other client gets, it has the defaults.
      for (let i = 0; i < 4; i++) {
        expect(await one(other, "show statement_timeout")).toBe("0");
        expect(await one(other, "select coalesce(current_setting('pgmux_test.tenant', true), '')")).toBe("");
      }
    } finally {
      await client.end().catch(ignore);
      await other.end().catch(ignore);
    }
  });

  test("SET LOCAL, set_config(…, true), a rolled-back SET and a failed one leave nothing behind", async () => {
    const client = await connect(instance);
    try {
      await client.query("begin; set local statement_timeout = '1111ms'; commit");
      await client.query("select set_config('statement_timeout', '2222ms', true)");
      await client.query("begin; set statement_timeout = '3333ms'; rollback");
      await client.query("set statement_timeout = '4444ms'; select 1/0").catch(ignore);
      for (let i = 0; i < 2; i++) {
        const seen = await elsewhere(() => one(client, "show statement_timeout"));
        expect(seen).toBe("0");
        expect(await one(client, "show statement_timeout")).toBe("0");
      }
    } finally {
      await client.end().catch(ignore);
    }
  });

  test("a SET committed inside a transaction holds; RESET takes it back everywhere", async () => {
    const client = await connect(instance);
    try {
      await client.query("begin");
      await client.query("set search_path = pg_catalog, public");
      await client.query("commit");
      expect(await elsewhere(() => one(client, "show search_path"))).toBe("pg_catalog, public");
      await client.query("reset search_path");
      expect(await elsewhere(() => one(client, "show search_path"))).toBe('"$user", public');
      expect(await one(client, "show search_path")).toBe('"$user", public');
    } finally {
      await client.end().catch(ignore);
    }
  });
});

describe("state that ties a client to its server pins it until undone", () => {
  let instance: PoolerInstance;

  beforeAll(async () => {
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2 } });
  });
  afterAll(async () => {
    await instance.stop();
  });

  const cases: { name: string; pin: string[]; unpin: string[]; reason: string }[] = [
    { name: "LISTEN", pin: ["listen pgmux_channel"], unpin: ["unlisten *"], reason: "listen" },
    {
      name: "a session advisory lock",
      pin: ["select pg_advisory_lock(4242)"],
      unpin: ["select pg_advisory_unlock_all()"],
      reason: "advisory_lock",
    },
    {
      name: "a temporary table",
      pin: ["create temp table pgmux_scratch (x int)"],
      unpin: ["drop table pgmux_scratch"],
      reason: "temp_table",
    },
    {
      name: "a cursor WITH HOLD",
      pin: ["begin", "declare pgmux_cur cursor with hold for select 1", "commit"],
      unpin: ["close pgmux_cur"],
      reason: "cursor_with_hold",
    },
    {
      name: "SQL PREPARE",
      pin: ["prepare pgmux_plan as select 1"],
      unpin: ["deallocate pgmux_plan"],
      reason: "sql_prepare",
    },
  ];

  for (const c of cases) {
    test(`${c.name} keeps the server across transactions; undoing it lets the server go`, async () => {
      const client = await connect(instance);
      const other = await connect(instance);
      try {
        for (const sql of c.pin) await client.query(sql);
        const pinnedPid = await pid(client);
        expect(lentServers(instance)).toBe(1);
        // Another client in a transaction takes the other server; the pinned one stays on its own.
        await other.query("begin");
        expect(await pid(client)).toBe(pinnedPid);
        expect(await pid(other)).not.toBe(pinnedPid);
        await other.query("commit");
        expect(poolOf(instance).pinsByReason.get(c.reason as never)).toBeGreaterThan(0);
        for (const sql of c.unpin) await client.query(sql);
        await waitUntil("the unpinned server to go back", () => lentServers(instance) === 0, { timeoutMs: 2000 });
      } finally {
        await client.end().catch(ignore);
        await other.end().catch(ignore);
      }
    });
  }

  test("a pinned LISTEN receives its notifications", async () => {
    const listener = await connect(instance);
    const notifier = await connect(instance);
    try {
      const got: string[] = [];
      listener.on("notification", (n) => got.push(n.payload ?? ""));
      await listener.query("listen pgmux_news");
      for (let i = 0; i < 3; i++) await notifier.query(`notify pgmux_news, 'n${i}'`);
      await waitUntil("three notifications", () => got.length === 3, { timeoutMs: 5000 });
      expect(got).toEqual(["n0", "n1", "n2"]);
    } finally {
      await listener.end().catch(ignore);
      await notifier.end().catch(ignore);
    }
  });

  test("a client that leaves pinned leaves nothing for the next one on that server", async () => {
    const leaver = await connect(instance);
    await leaver.query("listen pgmux_gone");
    await leaver.query("select pg_advisory_lock(777)");
    await leaver.query("create temp table pgmux_left (x int)");
    const leaverPid = await pid(leaver);
    await leaver.end();
    await waitUntil("its server to be reset and idle", () => lentServers(instance) === 0, { timeoutMs: 5000 });
    const next = await connect(instance);
    try {
      for (let i = 0; i < 3; i++) {
        const p = await pid(next);
        expect(await one(next, "select count(*) from pg_listening_channels()")).toBe("0");
        expect(
          await one(next, `select count(*) from pg_locks where locktype = 'advisory' and pid = ${leaverPid}`),
        ).toBe("0");
        expect(await one(next, "select count(*) from pg_class where relname = 'pgmux_left'")).toBe("0");
        if (p === leaverPid) break;
      }
    } finally {
      await next.end().catch(ignore);
    }
  });
});

describe("session_state = error and allow", () => {
  let refusing: PoolerInstance;
  let allowing: PoolerInstance;

  beforeAll(async () => {
    refusing = await startPooler({ postgres: server, settings: { defaultPoolSize: 2, sessionState: "error" } });
    allowing = await startPooler({ postgres: server, settings: { defaultPoolSize: 2, sessionState: "allow" } });
  });
  afterAll(async () => {
    await refusing.stop();
    await allowing.stop();
  });

  test("error: LISTEN is refused with 0A000 naming it, by simple and extended query alike", async () => {
    const client = await connect(refusing);
    try {
      const simple = await client.query("listen pgmux_refused").catch((e: pg.DatabaseError) => e);
      expect(simple).toBeInstanceOf(Error);
      expect((simple as pg.DatabaseError).code).toBe("0A000");
      expect((simple as pg.DatabaseError).message).toMatch(/LISTEN is not supported/);
      const extended = await client
        .query({ text: "select pg_advisory_lock($1)", values: [5] })
        .catch((e: pg.DatabaseError) => e);
      expect((extended as pg.DatabaseError).code).toBe("0A000");
      expect((extended as pg.DatabaseError).message).toMatch(/advisory lock/);
      // Refused, so nothing happened, and the connection goes on.
      expect(await one(client, "select count(*) from pg_listening_channels()")).toBe("0");
      expect(await one(client, "select 'still here'")).toBe("still here");
      expect(lentServers(refusing)).toBe(0);
    } finally {
      await client.end().catch(ignore);
    }
  });

  test("allow: LISTEN goes through and the server is not kept (PgBouncer's behaviour)", async () => {
    const client = await connect(allowing);
    try {
      await client.query("listen pgmux_allowed");
      expect(lentServers(allowing)).toBe(0);
    } finally {
      await client.end().catch(ignore);
    }
  });
});
