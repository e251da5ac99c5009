import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type RecordedConnection,
  RecordingRelay,
  type TestPostgres,
  testPostgres,
  waitUntil,
} from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

let names = 0;
function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${++names}`;
}

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/**
 * Stops a pgmux instance, failing after `ms` rather than hanging the file until the hook timeout if
 * pooler.stop() does not finish.
 */
async function stopWithin(instance: PoolerInstance | undefined, ms = 10_000): Promise<void> {
  if (instance === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pooler.stop() did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([instance.stop(), late]);
  } finally {
    clearTimeout(timer);
  }
}

function onlyPool(instance: PoolerInstance) {
  const pools = [...instance.pooler.pools.values()];
  expect(pools).toHaveLength(1);
  return pools[0]!;
}

/**
 * The most requests (Query or Sync messages) a recorded client connection had sent without their
 * ReadyForQuery back yet: above 1 means the client really pipelined. The frontend stream starts with the
 * untyped StartupMessage.
 */
function maxRequestsInFlight(connection: RecordedConnection): { simple: number; extended: number } {
  const QUERY = 0x51; // 'Q'
  const SYNC = 0x53; // 'S'
  const READY = 0x5a; // 'Z'
  const walkers = {
    frontend: { carry: Buffer.alloc(0), startup: true },
    backend: { carry: Buffer.alloc(0), startup: false },
  };
  const kinds: number[] = [];
  let head = 0;
  const max = { simple: 0, extended: 0 };
  for (const chunk of connection.chunks) {
    const w = walkers[chunk.direction];
    let buf = Buffer.concat([w.carry, chunk.bytes]);
    for (;;) {
      if (w.startup) {
        if (buf.length < 4) break;
        const length = buf.readUInt32BE(0);
        if (buf.length < length) break;
        buf = buf.subarray(length);
        w.startup = false;
        continue;
      }
      if (buf.length < 5) break;
      const length = buf.readUInt32BE(1);
      if (buf.length < 1 + length) break;
      const type = buf[0]!;
      if (chunk.direction === "frontend" && (type === SYNC || type === QUERY)) kinds.push(type);
      if (chunk.direction === "backend" && type === READY && head < kinds.length) head++;
      let simple = 0;
      for (let i = head; i < kinds.length; i++) if (kinds[i] === QUERY) simple++;
      max.simple = Math.max(max.simple, simple);
      max.extended = Math.max(max.extended, kinds.length - head - simple);
      buf = buf.subarray(1 + length);
    }
    w.carry = Buffer.from(buf);
  }
  return max;
}

describe("postgres.js through pgmux in transaction mode", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let database: string;

  beforeAll(async () => {
    server = await testPostgres();
    database = unique("drivers_db");
    await server.createDatabase(database);
    await server.psql("create table items (id int primary key, label text not null)", { database });
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 3 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  function sqlFor(options: postgres.Options<Record<string, postgres.PostgresType>> = {}) {
    return postgres(instance.url({ database }), {
      prepare: false,
      max: 1,
      onnotice: () => {},
      connect_timeout: 10,
      ...options,
    });
  }

  test("a thousand queries pipelined on one connection each get their own result", async () => {
    const relay = await RecordingRelay.start({ host: instance.host, port: instance.port });
    const sql = postgres(`postgres://${relay.host}:${relay.port}/${database}`, {
      user: server.user,
      pass: server.password,
      prepare: false,
      max: 1,
      onnotice: () => {},
      connect_timeout: 10,
    });
    try {
      // Parameterless, so that they go out back to back: postgres.js sends an unprepared query with
      // parameters as Parse/Describe/Flush first and waits for the description. Even ones through the simple
      // protocol (Query), odd ones through the extended protocol (Parse/Bind/Describe/Execute/Sync).
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          sql.unsafe(`select ${i}::int as i, md5('${i}') as h, repeat('x', ${i % 50}) as pad`, [], {
            simple: i % 2 === 0,
          } as postgres.UnsafeQueryOptions),
        ),
      );
      const { createHash } = await import("node:crypto");
      results.forEach((rows, i) => {
        expect(rows).toHaveLength(1);
        expect(rows[0]).toEqual({ i, h: createHash("md5").update(String(i)).digest("hex"), pad: "x".repeat(i % 50) });
      });
    } finally {
      await sql.end({ timeout: 5 });
    }
    await relay.settled(1);
    // The queries really were in flight together through pgmux, not one round trip at a time.
    const inFlight = maxRequestsInFlight(relay.connections[0]!);
    expect(inFlight.simple).toBeGreaterThan(10);
    expect(inFlight.extended).toBeGreaterThan(10);
    await relay.close();
  });

  test("pipelined queries that fail in the middle fail alone; the others and the next ones succeed", async () => {
    const sql = sqlFor();
    try {
      const settled = await Promise.allSettled(
        // Odd ones pipelined without parameters, even ones with parameters (described first).
        Array.from({ length: 300 }, (_, i) =>
          i % 2 === 1
            ? sql.unsafe(`select 100 / ${i % 10} as q, ${i} as i`)
            : sql`select 100 / ${i % 10}::int as q, ${i}::int as i`,
        ),
      );
      settled.forEach((outcome, i) => {
        if (i % 10 === 0) {
          expect(outcome.status).toBe("rejected");
          expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: "22012" });
        } else {
          expect(outcome.status).toBe("fulfilled");
          expect((outcome as PromiseFulfilledResult<postgres.RowList<postgres.Row[]>>).value).toEqual([
            { q: Math.trunc(100 / (i % 10)), i },
          ]);
        }
      });
      expect(await sql`select 'after' as word`).toEqual([{ word: "after" }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    const pool = onlyPool(instance);
    await waitUntil("every server back in the pool", () => pool.active === 0 && pool.idleCount === pool.servers.size, {
      timeoutMs: 2_000,
    });
  });

  test("a dozen connections with hundreds of queries each in flight share three servers; every write is there once", async () => {
    const CONNECTIONS = 12;
    const PER_CONNECTION = 200;
    const clients = Array.from({ length: CONNECTIONS }, () => sqlFor({ max: 1 }));
    try {
      await Promise.all(
        clients.map((sql, c) =>
          Promise.all(
            Array.from({ length: PER_CONNECTION }, (_, k) => {
              const id = c * PER_CONNECTION + k;
              // Half pipelined without parameters, half with parameters (each described first).
              const insert =
                k % 2 === 0
                  ? sql.unsafe(`insert into items (id, label) values (${id}, 'label-${id}') returning id`, [], {
                      simple: false,
                    } as postgres.UnsafeQueryOptions)
                  : sql`insert into items (id, label) values (${id}, ${`label-${id}`}) returning id`;
              return insert.then((rows) => expect(rows).toEqual([{ id }]));
            }),
          ),
        ),
      );
      expect(instance.serverCount()).toBeLessThanOrEqual(3);
      const [check] = await clients[0]!`select count(*)::int as n, count(distinct id)::int as d,
        bool_and(label = 'label-' || id) as labels from items`;
      expect(check).toEqual({ n: CONNECTIONS * PER_CONNECTION, d: CONNECTIONS * PER_CONNECTION, labels: true });
    } finally {
      await Promise.all(clients.map((sql) => sql.end({ timeout: 5 })));
    }
  });

  test("queries pipelined inside a transaction all run in it, on one server", async () => {
    const sql = sqlFor();
    try {
      const results = await sql.begin((tx) =>
        Array.from(
          { length: 50 },
          (_, i) => tx`select ${i}::int as i, pg_backend_pid() as pid, txid_current()::text as txid`,
        ),
      );
      const first = results[0]![0]!;
      expect(results.map((rows) => rows[0]!.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      for (const rows of results) expect([rows[0]!.pid, rows[0]!.txid]).toEqual([first.pid, first.txid]);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

describe("node-postgres through pgmux in transaction mode", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  test("parameterised queries of many types round-trip through the extended protocol", async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(instance.params())));
    try {
      await Promise.all(
        clients.map(async (client, c) => {
          for (let k = 0; k < 30; k++) {
            const text = `client ${c} query ${k} 'quoted' ünïcode`;
            const bytes = Buffer.from([c, k, 0, 255]);
            const { rows } = await client.query(
              "select $1::int as n, $2::text as text, $3::bytea as bytes, $4::jsonb as doc, $5::numeric as num, $6::bool as flag, $7::int[] as list, $8::text as nothing",
              [c * 1000 + k, text, bytes, { c, k }, "12345678901234567890.5", k % 2 === 0, [c, k], null],
            );
            expect(rows).toEqual([
              {
                n: c * 1000 + k,
                text,
                bytes,
                doc: { c, k },
                num: "12345678901234567890.5",
                flag: k % 2 === 0,
                list: [c, k],
                nothing: null,
              },
            ]);
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe("notifications in session mode", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { poolMode: "session", defaultPoolSize: 4 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  test("a LISTENing client gets the NOTIFY of another client, while it is idle", async () => {
    const listener = await connect(instance.params());
    const notifier = await connect(instance.params());
    const received: Array<{ channel: string; payload?: string | undefined; processId: number }> = [];
    listener.on("notification", (n) =>
      received.push({ channel: n.channel, payload: n.payload, processId: n.processId }),
    );
    try {
      await listener.query("LISTEN pgmux_channel");
      const notifierPid = (await notifier.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      await notifier.query("NOTIFY pgmux_channel, 'first'");
      await notifier.query("select pg_notify('pgmux_channel', 'second')");
      await notifier.query("NOTIFY other_channel, 'not for us'");
      await waitUntil("two notifications", () => received.length >= 2, { timeoutMs: 5_000 });
      expect(received).toEqual([
        { channel: "pgmux_channel", payload: "first", processId: notifierPid },
        { channel: "pgmux_channel", payload: "second", processId: notifierPid },
      ]);
      // A notification committed while the listener is inside a query arrives too.
      const during = listener.query("select pg_sleep(0.2)");
      await notifier.query("NOTIFY pgmux_channel, 'third'");
      await during;
      await waitUntil("the third notification", () => received.length >= 3, { timeoutMs: 5_000 });
      expect(received[2]).toEqual({ channel: "pgmux_channel", payload: "third", processId: notifierPid });
      expect(received).toHaveLength(3);
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
    }
  });
});
