import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Clients that vanish without a word (their socket destroyed) in the middle of a transaction or of a query:
 * pgmux must roll back or cancel what they left on the server, hand no dirty server to anyone, and keep its
 * pool whole. A thousand of them, a hundred at a time, on a pool of ten.
 */

const CLIENTS = 1000;
const BATCH = 100;
const POOL_SIZE = 10;

let pgServer: TestPostgres;
let pooler: PoolerInstance;
const database = `fail_disconnect_${process.pid}`;

beforeAll(async () => {
  pgServer = await testPostgres();
  await pgServer.createDatabase(database);
  await pgServer.psql("create table victims (marker text not null)", { database });
  // trust: the test is about disconnections, and a thousand SCRAM proofs would only slow the client side.
  pooler = await startPooler({
    postgres: pgServer,
    settings: { authType: "trust", defaultPoolSize: POOL_SIZE, maxClientConn: 2000 },
  });
});

afterAll(async () => {
  if (pooler) await stopWithin(pooler, 5000);
  await pgServer?.psql(`drop database if exists ${database} with (force)`);
});

type Kind = "in-transaction" | "query-in-transaction" | "query" | "waiting";

/**
 * Most leave after an INSERT inside a transaction; some while a pg_sleep runs, inside a transaction or not;
 * some right after sending a query, most likely still queued for a server or while pgmux prepares one.
 */
function kindOf(i: number): Kind {
  const r = i % 20;
  if (r < 15) return "in-transaction";
  if (r < 17) return "query-in-transaction";
  if (r < 18) return "query";
  return "waiting";
}

describe("clients that disconnect mid-transaction and mid-query", () => {
  test(`${CLIENTS} of them leave no open transaction, no running query, no row, and a whole pool`, async () => {
    const counts: Record<Kind, number> = { "in-transaction": 0, "query-in-transaction": 0, query: 0, waiting: 0 };
    for (let start = 0; start < CLIENTS; start += BATCH) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < Math.min(CLIENTS, start + BATCH); i++) {
        counts[kindOf(i)]++;
        batch.push(vanish(i, kindOf(i)));
      }
      await Promise.all(batch);
    }
    expect(counts["query-in-transaction"] + counts.query).toBeGreaterThanOrEqual(100);
    expect(counts.waiting).toBeGreaterThanOrEqual(100);

    await waitUntil(
      "no backend of the database to be idle in a transaction or running pg_sleep",
      async () =>
        (await pgServer.psql(
          `select count(*) filter (where state like 'idle in transaction%')
                  || ',' || count(*) filter (where state = 'active' and query like '%pg_sleep%')
             from pg_stat_activity where datname = '${database}'`,
        )) === "0,0",
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(await pgServer.psql("select count(*) from victims", { database })).toBe("0");

    const pool = pooler.pooler.pools.get(`${database}\0${pgServer.user}`)!;
    await waitUntil(
      "the pool to be whole: every server idle, no client left",
      () =>
        pool.active === 0 &&
        pool.waitingCount === 0 &&
        pool.idleCount === pool.servers.size &&
        pooler.pooler.clients.size === 0,
      {
        timeoutMs: 10_000,
        detail: () =>
          `servers ${pool.servers.size}, idle ${pool.idleCount}, active ${pool.active}, waiting ${pool.waitingCount}, clients ${pooler.pooler.clients.size}`,
      },
    );
    expect(pool.servers.size).toBeLessThanOrEqual(POOL_SIZE);
    expect(pool.servers.size).toBeGreaterThan(0);
    // Servers were cleaned and reused, not thrown away and reopened for each client that left.
    expect(pooler.pooler.stats.serversOpened).toBeLessThan(CLIENTS / 10);
    expect(
      Number(await pgServer.psql(`select count(*) from pg_stat_activity where datname = '${database}'`)),
    ).toBeLessThanOrEqual(POOL_SIZE);

    // A fresh client works, and its work sticks.
    const fresh = new pg.Client(pooler.params({ database }));
    await fresh.connect();
    try {
      await fresh.query("begin");
      await fresh.query("insert into victims values ('kept')");
      await fresh.query("commit");
      expect((await fresh.query("select marker from victims")).rows).toEqual([{ marker: "kept" }]);
    } finally {
      await fresh.end();
    }
  });
});

describe("a client that leaves while its server is being prepared", () => {
  test("costs nothing: the server prepared for it (parameter sync) goes straight back to the pool", async () => {
    // A pool of one server, and clients whose application_name differs from the server's, so linking each
    // means a parameter sync on the server first. Each sends a query and drops its socket at once: most
    // often the drop is read while the sync still runs, before any of the client's bytes reach the server.
    const single = await startPooler({ postgres: pgServer, settings: { authType: "trust", defaultPoolSize: 1 } });
    try {
      const warm = new pg.Client(single.params({ database }));
      await warm.connect();
      await warm.query("select 1");
      await warm.end();
      const pool = single.pooler.pools.get(`${database}\0${pgServer.user}`)!;
      for (let i = 0; i < 50; i++) {
        const client = new pg.Client({ ...single.params({ database }), application_name: `leaving ${i}` });
        client.on("error", () => {});
        await client.connect();
        client.query("select pg_sleep(5)").catch(() => {});
        (client as unknown as { connection: { stream: import("node:net").Socket } }).connection.stream.destroy();
        await waitUntil(
          `the one server to be idle again after client ${i} left`,
          () =>
            pool.active === 0 && pool.servers.size === 1 && pool.idleCount === 1 && single.pooler.clients.size === 0,
          {
            timeoutMs: 3000,
            detail: () =>
              JSON.stringify([...pool.servers].map((s) => ({ state: s.state, client: s.client?.id ?? null }))),
          },
        );
      }
      const after = new pg.Client(single.params({ database }));
      await after.connect();
      expect((await after.query("select 'served' as s")).rows).toEqual([{ s: "served" }]);
      await after.end();
    } finally {
      await stopWithin(single, 3000);
    }
  });
});

/**
 * One client that does its part of a transaction or query and then drops its socket. Every third one has an
 * application_name of its own, so pgmux also has a parameter sync to run when it lands on a server.
 */
async function vanish(i: number, kind: Kind): Promise<void> {
  const own = i % 3 === 0 ? { application_name: `vanishing ${i}` } : {};
  const client = new pg.Client({ ...pooler.params({ database }), ...own });
  client.on("error", () => {});
  await client.connect();
  const stream = (client as unknown as { connection: { stream: import("node:net").Socket } }).connection.stream;
  if (kind === "waiting") {
    client.query("begin; insert into victims values ('never committed either')").catch(() => {});
    client.query("select pg_sleep(5)").catch(() => {});
    stream.destroy();
    return;
  }
  if (kind !== "query") {
    await client.query("begin");
    await client.query("insert into victims values ($1)", [`client ${i}`]);
  }
  if (kind !== "in-transaction") {
    client.query("select pg_sleep(5)").catch(() => {});
    // Leave only once pgmux has handed the query to a server.
    const remote = `127.0.0.1:${stream.localPort}`;
    await waitUntil(
      `client ${i}'s pg_sleep to be running on a server`,
      () => {
        for (const c of pooler.pooler.clients) if (c.remote === remote) return c.server !== null && c.owed > 0;
        return false;
      },
      { timeoutMs: 15_000, intervalMs: 5 },
    );
  }
  stream.destroy();
}

/** pooler.stop() bounded in time: true when it finished, false when it was still waiting after `ms`. */
async function stopWithin(instance: PoolerInstance, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([instance.stop().then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
