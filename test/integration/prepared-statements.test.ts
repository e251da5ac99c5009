import {
  type BackendMessage,
  encodeBind,
  encodeClose,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeParse,
  encodeSync,
} from "@pgmux/protocol";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RawPeer, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Named prepared statements in transaction pooling: a client prepares once and executes on whichever
 * server it gets, never seeing pgmux's names or its extra messages. Checked with real drivers for the
 * results, and byte for byte on raw sockets for the exact replies.
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

/** Message types of a reply sequence, in order ("1" ParseComplete, "2" BindComplete, ...). */
function shape(messages: readonly BackendMessage[]): string[] {
  return messages.map((m) => (m.type === "ReadyForQuery" ? `Z${String.fromCharCode(m.status)}` : m.type));
}

function firstColumn(messages: readonly BackendMessage[]): string[] {
  return messages.flatMap((m) =>
    m.type === "DataRow" && m.values[0] !== null && m.values[0] !== undefined
      ? [Buffer.from(m.values[0]).toString()]
      : [],
  );
}

function text(value: string): Buffer {
  return Buffer.from(value);
}

function execute(statement: string, parameters: (Buffer | null)[] = []): Buffer {
  return Buffer.concat([
    encodeBind({ portal: "", statement, parameterFormats: [], parameters, resultFormats: [] }),
    encodeExecute({ portal: "", maxRows: 0 }),
  ]);
}

function parse(statement: string, query: string, parameterTypes: number[] = []): Buffer {
  return encodeParse({ statement, query, parameterTypes });
}

const SYNC = encodeSync();

describe("named prepared statements with real drivers, many clients on a small pool", () => {
  let instance: PoolerInstance;

  beforeAll(async () => {
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2, maxClientConn: 200 } });
  });
  afterAll(async () => {
    await instance.stop();
  });

  test("node-postgres named queries from 20 clients run on servers that never saw their Parse", async () => {
    const table = `prep_pg_${process.pid}`;
    await server.psql(`drop table if exists ${table}; create table ${table} (client int, n int)`);
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(instance)));
    try {
      const pidsPerClient = await Promise.all(
        clients.map(async (client, c) => {
          const pids = new Set<number>();
          for (let i = 0; i < 50; i++) {
            const r = await client.query({
              name: "add_one",
              text: "select $1::int + 1 as v, pg_backend_pid() as pid",
              values: [i],
            });
            expect(r.rows[0].v).toBe(i + 1);
            pids.add(r.rows[0].pid);
            await client.query({ name: "insert_row", text: `insert into ${table} values ($1, $2)`, values: [c, i] });
          }
          return pids.size;
        }),
      );
      // Each client's statements were executed on more than one server: pgmux prepared them there.
      expect(pidsPerClient.filter((n) => n > 1).length).toBeGreaterThan(0);
      expect(await server.psql(`select count(*), count(distinct (client, n)) from ${table}`)).toBe("1000|1000");
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(ignore)));
    }
  });

  test("identical statements of many clients share one server-side statement under pgmux's name", async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(instance)));
    try {
      const query = "select $1::text || ' shared' as v";
      for (const [i, client] of clients.entries()) {
        const r = await client.query({ name: `mine_${i}`, text: query, values: [`c${i}`] });
        expect(r.rows[0].v).toBe(`c${i} shared`);
      }
      const seen = await clients[0]!.query(
        "select name, count(*) over () as n from pg_prepared_statements where statement = $1",
        [query],
      );
      expect(seen.rows.length).toBeLessThanOrEqual(1);
      for (const row of seen.rows) expect(row.name).toMatch(/^pgmux_s\d+$/);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(ignore)));
    }
  });

  test("postgres.js with its default prepared statements: 10 connections, 2 servers, right answers", async () => {
    const sql = postgres(instance.url(), { max: 10, onnotice: ignore });
    try {
      const results = await Promise.all(
        Array.from({ length: 400 }, async (_, i) => {
          const [row] = await sql<{ v: number }[]>`select ${i}::int * 2 as v`;
          return row!.v === i * 2;
        }),
      );
      expect(results.every(Boolean)).toBe(true);
      const inTransactions = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          sql.begin(async (tx) => {
            const [a] = await tx<{ v: string }[]>`select ${`t${i}`}::text as v`;
            const [b] = await tx<{ v: number }[]>`select ${i}::int + 100 as v`;
            return a!.v === `t${i}` && b!.v === i + 100;
          }),
        ),
      );
      expect(inTransactions.every(Boolean)).toBe(true);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  test("node-postgres sees a table's new columns after DDL between executions of its named query", async () => {
    const table = `prep_ddl_pg_${process.pid}`;
    await server.psql(`drop table if exists ${table}; create table ${table} (a int); insert into ${table} values (7)`);
    const clients = await Promise.all(Array.from({ length: 4 }, () => connect(instance)));
    try {
      for (const c of clients) {
        const r = await c.query({ name: "ddl_read", text: `select * from ${table}` });
        expect(r.rows).toEqual([{ a: 7 }]);
      }
      await server.psql(`alter table ${table} add column b int default 8`);
      for (const c of clients) {
        for (let i = 0; i < 3; i++) {
          const r = await c.query({ name: "ddl_read", text: `select * from ${table}` });
          expect(r.rows).toEqual([{ a: 7, b: 8 }]);
        }
      }
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(ignore)));
    }
  });

  test("a statement survives the death of the server it was prepared on", async () => {
    const client = await connect(instance);
    try {
      const first = await client.query({ name: "survivor", text: "select $1::int * 3 as v", values: [2] });
      expect(first.rows[0].v).toBe(6);
      // Every server of the pool is killed between the two executions.
      const pids = [...instance.pooler.pools.values()].flatMap((p) => [...p.servers].map((s) => s.backendPid));
      expect(pids.length).toBeGreaterThan(0);
      await server.psql(`select pg_terminate_backend(pid) from unnest(array[${pids.join(",")}]) as pid`);
      await waitUntil("the pool to notice its servers died", () => instance.serverCount() === 0, {
        timeoutMs: 5000,
      });
      const second = await client.query({ name: "survivor", text: "select $1::int * 3 as v", values: [5] });
      expect(second.rows[0].v).toBe(15);
    } finally {
      await client.end().catch(ignore);
    }
  });
});

describe("the replies a client sees, byte for byte", () => {
  let instance: PoolerInstance;

  beforeAll(async () => {
    instance = await startPooler({ postgres: server, settings: { authType: "trust", defaultPoolSize: 2 } });
  });
  afterAll(async () => {
    await instance.stop();
  });

  async function peer(): Promise<RawPeer> {
    return RawPeer.loggedIn(instance.port, server.user, server.database);
  }

  /** Keeps a server busy inside a transaction, so the next client lands on the other one. */
  async function occupyOneServer(): Promise<RawPeer> {
    const holder = await peer();
    await holder.query("begin");
    return holder;
  }

  test("a Bind on a server that lacks the statement gets exactly the replies a single server would give", async () => {
    const client = await peer();
    client.send(Buffer.concat([parse("s1", "select $1::int + 10", [23]), SYNC]));
    expect(shape(await client.untilReady())).toEqual(["ParseComplete", "ZI"]);
    const pidBefore = (await client.query("select pg_backend_pid()"))[0];
    const holder = await occupyOneServer();
    try {
      const pidNow = (await client.query("select pg_backend_pid()"))[0];
      client.send(Buffer.concat([execute("s1", [text("5")]), SYNC]));
      const replies = await client.untilReady();
      expect(shape(replies)).toEqual(["BindComplete", "DataRow", "CommandComplete", "ZI"]);
      expect(firstColumn(replies)).toEqual(["15"]);
      // It really ran elsewhere than where it was parsed (LIFO would have given the same server back).
      expect(pidNow).not.toBe(pidBefore);
    } finally {
      holder.destroy();
      client.destroy();
    }
  });

  test("a Parse of a statement the server already holds is answered in order without reaching it", async () => {
    const a = await peer();
    const b = await peer();
    try {
      a.send(Buffer.concat([parse("x", "select 'same text'::text"), execute("x"), SYNC]));
      expect(shape(await a.untilReady())).toEqual([
        "ParseComplete",
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "ZI",
      ]);
      // b prepares the same text under another name, pipelined with Describe: one ParseComplete, in its place.
      b.send(
        Buffer.concat([
          parse("other_name", "select 'same text'::text"),
          encodeDescribe({ kind: "S", name: "other_name" }),
          execute("other_name"),
          SYNC,
        ]),
      );
      const replies = await b.untilReady();
      expect(shape(replies)).toEqual([
        "ParseComplete",
        "ParameterDescription",
        "RowDescription",
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "ZI",
      ]);
      expect(firstColumn(replies)).toEqual(["same text"]);
      // b landed on a's server (the most recently released): it holds the text once, under pgmux's name.
      const held = await b.query(
        `select name from pg_prepared_statements where statement = 'select ''same text''::text'`,
      );
      expect(held).toHaveLength(1);
      expect(held[0]).toMatch(/^pgmux_s\d+$/);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test("a Parse of a text a server already accepted is answered at once, even with every server taken", async () => {
    const a = await peer();
    a.send(Buffer.concat([parse("known", "select 'known'::text"), SYNC]));
    expect(shape(await a.untilReady())).toEqual(["ParseComplete", "ZI"]);
    const holders = [await occupyOneServer(), await occupyOneServer()];
    const b = await peer();
    try {
      b.send(Buffer.concat([parse("mine", "select 'known'::text"), SYNC]));
      expect(shape(await b.untilReady(1000))).toEqual(["ParseComplete", "ZI"]);
    } finally {
      for (const h of holders) h.destroy();
    }
    try {
      b.send(Buffer.concat([execute("mine"), SYNC]));
      expect(firstColumn(await b.untilReady())).toEqual(["known"]);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test("an error in a pipeline: the skipped statements are prepared again when next used", async () => {
    const client = await peer();
    try {
      client.send(
        Buffer.concat([
          parse("div", "select 10 / ($1::int + (random() * 0)::int)"),
          execute("div", [text("0")]),
          parse("later", "select 'later'::text"),
          execute("later"),
          SYNC,
        ]),
      );
      const failed = await client.untilReady();
      expect(shape(failed)).toEqual(["ParseComplete", "BindComplete", "ErrorResponse", "ZI"]);
      const error = failed[2] as Extract<BackendMessage, { type: "ErrorResponse" }>;
      expect(error.fields.get("C")).toBe("22012");
      // "later" was skipped by the server: it must be prepared now, invisibly.
      client.send(Buffer.concat([execute("later"), execute("div", [text("5")]), SYNC]));
      const replies = await client.untilReady();
      expect(shape(replies)).toEqual([
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "ZI",
      ]);
      expect(firstColumn(replies)).toEqual(["later", "2"]);
    } finally {
      client.destroy();
    }
  });

  test("Close forgets the client's name; the name can then be prepared with another text", async () => {
    const client = await peer();
    try {
      client.send(Buffer.concat([parse("n", "select 'first'::text"), execute("n"), SYNC]));
      expect(firstColumn(await client.untilReady())).toEqual(["first"]);
      // Close on its own, outside any transaction, is answered by pgmux.
      client.send(Buffer.concat([encodeClose({ kind: "S", name: "n" }), SYNC]));
      expect(shape(await client.untilReady())).toEqual(["CloseComplete", "ZI"]);
      client.send(Buffer.concat([execute("n"), SYNC]));
      const missing = await client.untilReady();
      expect(shape(missing)).toEqual(["ErrorResponse", "ZI"]);
      expect((missing[0] as Extract<BackendMessage, { type: "ErrorResponse" }>).fields.get("C")).toBe("26000");
      // Pipelined behind other work, the Close is answered in its place.
      client.send(
        Buffer.concat([
          parse("n", "select 'second'::text"),
          execute("n"),
          encodeClose({ kind: "S", name: "n" }),
          parse("n", "select 'third'::text"),
          execute("n"),
          SYNC,
        ]),
      );
      const replies = await client.untilReady();
      expect(shape(replies)).toEqual([
        "ParseComplete",
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "CloseComplete",
        "ParseComplete",
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "ZI",
      ]);
      expect(firstColumn(replies)).toEqual(["second", "third"]);
    } finally {
      client.destroy();
    }
  });

  test("Flush without Sync: the replies pgmux gives itself come in order before the server's", async () => {
    const a = await peer();
    const b = await peer();
    try {
      a.send(Buffer.concat([parse("f", "select 42"), SYNC]));
      await a.untilReady();
      b.send(Buffer.concat([parse("g", "select 42"), encodeDescribe({ kind: "S", name: "g" }), encodeFlush()]));
      const first = [await b.next(), await b.next(), await b.next()];
      expect(first.map((m) => m?.type)).toEqual(["ParseComplete", "ParameterDescription", "RowDescription"]);
      b.send(Buffer.concat([execute("g"), SYNC]));
      expect(shape(await b.untilReady())).toEqual(["BindComplete", "DataRow", "CommandComplete", "ZI"]);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test("DDL that changes a prepared statement's result: the next execution returns the new shape, no error", async () => {
    const table = `prep_ddl_${process.pid}`;
    await server.psql(`drop table if exists ${table}; create table ${table} (a int); insert into ${table} values (1)`);
    const client = await peer();
    try {
      client.send(Buffer.concat([parse("all_rows", `select * from ${table}`), execute("all_rows"), SYNC]));
      expect(shape(await client.untilReady())).toEqual([
        "ParseComplete",
        "BindComplete",
        "DataRow",
        "CommandComplete",
        "ZI",
      ]);
      await server.psql(`alter table ${table} add column b text default 'new'`);
      client.send(
        Buffer.concat([
          encodeBind({ portal: "", statement: "all_rows", parameterFormats: [], parameters: [], resultFormats: [] }),
          encodeDescribe({ kind: "P", name: "" }),
          encodeExecute({ portal: "", maxRows: 0 }),
          SYNC,
        ]),
      );
      const replies = await client.untilReady();
      expect(shape(replies)).toEqual(["BindComplete", "RowDescription", "DataRow", "CommandComplete", "ZI"]);
      const row = replies.find((m) => m.type === "DataRow") as Extract<BackendMessage, { type: "DataRow" }>;
      expect(row.values.map((v) => (v === null ? null : Buffer.from(v).toString()))).toEqual(["1", "new"]);
    } finally {
      client.destroy();
    }
  });

  test("unnamed statements and portals pass through untouched", async () => {
    const client = await peer();
    try {
      client.send(
        Buffer.concat([
          parse("", "select $1::int - 1", [23]),
          encodeBind({ portal: "p", statement: "", parameterFormats: [], parameters: [text("7")], resultFormats: [] }),
          encodeDescribe({ kind: "P", name: "p" }),
          encodeExecute({ portal: "p", maxRows: 0 }),
          SYNC,
        ]),
      );
      const replies = await client.untilReady();
      expect(shape(replies)).toEqual([
        "ParseComplete",
        "BindComplete",
        "RowDescription",
        "DataRow",
        "CommandComplete",
        "ZI",
      ]);
      expect(firstColumn(replies)).toEqual(["6"]);
    } finally {
      client.destroy();
    }
  });
});

describe("max_prepared_statements bounds what each server holds", () => {
  let instance: PoolerInstance;

  beforeAll(async () => {
    instance = await startPooler({
      postgres: server,
      settings: { authType: "trust", defaultPoolSize: 1, maxPreparedStatements: 2 },
    });
  });
  afterAll(async () => {
    await instance.stop();
  });

  test("five statements used in turn on a server that may hold two: all answer, the server keeps two", async () => {
    const client = await RawPeer.loggedIn(instance.port, server.user, server.database);
    try {
      for (let i = 0; i < 5; i++) {
        client.send(Buffer.concat([parse(`s${i}`, `select ${i} * $1::int`), SYNC]));
        expect(shape(await client.untilReady())).toEqual(["ParseComplete", "ZI"]);
      }
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          client.send(Buffer.concat([execute(`s${i}`, [text(String(round + 1))]), SYNC]));
          const replies = await client.untilReady();
          expect(shape(replies)).toEqual(["BindComplete", "DataRow", "CommandComplete", "ZI"]);
          expect(firstColumn(replies)).toEqual([String(i * (round + 1))]);
        }
      }
      const held = await client.query("select count(*) from pg_prepared_statements");
      expect(Number(held[0])).toBeLessThanOrEqual(2);
      const pool = [...instance.pooler.pools.values()][0]!;
      expect(pool.statements!.stats.evictions).toBeGreaterThan(0);
    } finally {
      client.destroy();
    }
  });
});
