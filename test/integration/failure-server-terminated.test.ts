import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * A server connection killed under pgmux (pg_terminate_backend): the client it served learns that its server
 * is gone (08006, after PostgreSQL's own FATAL 57P01 relayed as it came), other clients carry on, and the
 * pool replaces the server without pgmux being restarted. A server killed while idle is simply replaced.
 */

type PgError = Error & { code?: string };

let pgServer: TestPostgres;
let pooler: PoolerInstance;

beforeAll(async () => {
  pgServer = await testPostgres();
  pooler = await startPooler({ postgres: pgServer, settings: { defaultPoolSize: 2 } });
});

afterAll(async () => {
  if (pooler) await stopWithin(pooler, 3000);
});

describe("a server terminated by PostgreSQL", () => {
  test("while linked to a client in a transaction: the client gets 57P01 and/or 08006, the pool replaces the server", async () => {
    const victim = await connected();
    const neighbour = await connected();
    const seen: PgError[] = [];
    victim.on("error", (e) => seen.push(e));
    try {
      await victim.query("begin");
      const pid = await backendPid(victim);
      await neighbour.query("begin");
      const neighbourPid = await backendPid(neighbour);
      expect(neighbourPid).not.toBe(pid);

      expect(await pgServer.terminate(pid)).toBe(true);
      // The victim learns it without sending anything; a query it sends now fails too.
      await waitUntil("the victim to hear of its lost server", () => seen.some((e) => e.code === "08006"), {
        timeoutMs: 5000,
        detail: () => JSON.stringify(seen.map((e) => [e.code, e.message])),
      });
      await victim.query("select 1").catch((e: PgError) => seen.push(e));
      const codes = seen.map((e) => e.code).filter((c) => c !== undefined);
      expect(new Set(codes)).toEqual(new Set(codes.filter((c) => c === "57P01" || c === "08006")));
      const lost = seen.find((e) => e.code === "08006")!;
      expect(lost.message).toMatch(/^the server connection was lost while in use: /);
      // Which happened: PostgreSQL's FATAL relayed before pgmux's own 08006, or pgmux's alone.
      console.info(`terminated server: the client saw ${codes.join(" then ")}`);
      if (codes.includes("57P01")) expect(codes.indexOf("57P01")).toBeLessThan(codes.indexOf("08006"));

      // The neighbour's transaction on the other server is untouched.
      expect(await backendPid(neighbour)).toBe(neighbourPid);
      await neighbour.query("commit");

      // A new client gets a server (a fresh one in place of the dead), with no restart of pgmux.
      const next = await connected();
      try {
        await next.query("begin");
        const nextPid = await backendPid(next);
        expect(nextPid).not.toBe(pid);
        await next.query("commit");
      } finally {
        await next.end();
      }
      const pool = poolOf();
      expect(pool.servers.size).toBeLessThanOrEqual(2);
      await waitUntil("the pool to settle", () => pool.active === 0 && pool.idleCount === pool.servers.size, {
        timeoutMs: 3000,
      });
    } finally {
      await Promise.all([victim, neighbour].map((c) => c.end().catch(() => {})));
    }
  });

  test("while running a client's query: the query fails with 57P01 or 08006, and the next query runs elsewhere", async () => {
    const victim = await connected();
    const seen: PgError[] = [];
    victim.on("error", (e) => seen.push(e));
    try {
      const running = victim.query("select pg_sleep(30) /* terminate me */").then(
        () => null,
        (e: PgError) => e,
      );
      let pid = 0;
      await waitUntil(
        "the pg_sleep to run",
        async () => {
          pid = Number(
            await pgServer.psql(
              "select coalesce(max(pid), 0) from pg_stat_activity where query like '%terminate me%' and state = 'active' and pid <> pg_backend_pid()",
            ),
          );
          return pid > 0;
        },
        { timeoutMs: 5000, intervalMs: 50 },
      );
      expect(await pgServer.terminate(pid)).toBe(true);
      const error = await running;
      expect(error).not.toBeNull();
      expect(["57P01", "08006"]).toContain(error!.code);
      console.info(`terminated mid-query: the query failed with ${error!.code}`);

      const next = await connected();
      try {
        expect(await backendPid(next)).not.toBe(pid);
      } finally {
        await next.end();
      }
    } finally {
      await victim.end().catch(() => {});
    }
  });

  test("while idle in the pool: it is replaced and no client sees an error", async () => {
    const a = await connected();
    const b = await connected();
    const errors: PgError[] = [];
    for (const c of [a, b]) c.on("error", (e) => errors.push(e));
    try {
      // Two servers exist, both idle.
      await a.query("begin");
      await b.query("begin");
      const pids = [await backendPid(a), await backendPid(b)];
      await a.query("commit");
      await b.query("commit");
      for (const pid of pids) expect(await pgServer.terminate(pid)).toBe(true);
      await waitUntil("pgmux to notice its idle servers died", () => pooler.serverCount() === 0, { timeoutMs: 5000 });
      for (let i = 0; i < 5; i++) {
        expect((await a.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
        expect((await b.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
      }
      expect(errors).toEqual([]);
      expect(pids).not.toContain(await backendPid(a));
    } finally {
      await Promise.all([a, b].map((c) => c.end().catch(() => {})));
    }
  });
});

// ---- helpers ------------------------------------------------------------------------------------------------

async function connected(): Promise<pg.Client> {
  const client = new pg.Client(pooler.params());
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query("select pg_backend_pid() as pid")).rows[0].pid;
}

function poolOf() {
  return pooler.pooler.pools.get(`${pgServer.database}\0${pgServer.user}`)!;
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
