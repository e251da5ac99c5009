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

type Kind = "in-transaction" | "query-in-transaction" | "query";

/** Most leave after an INSERT inside a transaction; some while a pg_sleep runs, inside a transaction or not. */
function kindOf(i: number): Kind {
  const r = i % 20;
  if (r < 17) return "in-transaction";
  if (r < 19) return "query-in-transaction";
  return "query";
}

describe("clients that disconnect mid-transaction and mid-query", () => {
  test(`${CLIENTS} of them leave no open transaction, no running query, no row, and a whole pool`, async () => {
    const counts: Record<Kind, number> = { "in-transaction": 0, "query-in-transaction": 0, query: 0 };
    for (let start = 0; start < CLIENTS; start += BATCH) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < Math.min(CLIENTS, start + BATCH); i++) {
        counts[kindOf(i)]++;
        batch.push(vanish(i, kindOf(i)));
      }
      await Promise.all(batch);
    }
    expect(counts["query-in-transaction"] + counts.query).toBeGreaterThan(100);

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

/** One client that does its part of a transaction or query and then drops its socket. */
async function vanish(i: number, kind: Kind): Promise<void> {
  const client = new pg.Client(pooler.params({ database }));
  client.on("error", () => {});
  await client.connect();
  const stream = (client as unknown as { connection: { stream: import("node:net").Socket } }).connection.stream;
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
