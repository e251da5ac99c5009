import net from "node:net";
import { type BackendMessage, encodeStartupMessage, ProtocolVersion } from "@pgmux/protocol";
import pg from "pg";
import { beforeAll, describe, expect, test } from "vitest";
import { RawPeer, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Every timeout pgmux enforces, each with the SQLSTATE and message the client gets and what becomes of the
 * server. Timeouts are 1–2 s here; the janitor sweeps every 250 ms, so each deadline is checked with a margin.
 */

type PgError = Error & { code?: string };

let pgServer: TestPostgres;

beforeAll(async () => {
  pgServer = await testPostgres();
});

describe("client-side timeouts", () => {
  test("query_wait_timeout: a client waiting for a busy pool of one gets 53300 naming the pool and the wait", async () => {
    const pooler = await startPooler({
      postgres: pgServer,
      settings: { defaultPoolSize: 1, queryWaitTimeoutMs: 1500 },
    });
    const holder = await connected(pooler);
    const waiter = await connected(pooler);
    try {
      await holder.query("begin");
      const started = Date.now();
      const error = await rejection(waiter.query("select 1"));
      const waited = Date.now() - started;
      expect(error.code).toBe("53300");
      expect(error.message).toBe(
        `query_wait_timeout: no server connection of pool "${pgServer.database}/${pgServer.user}" became free within 1.5 s (pool size 1)`,
      );
      expect(waited).toBeGreaterThanOrEqual(1400);
      expect(waited).toBeLessThan(4000);
      // The holder was not disturbed and the pool forgot the waiter.
      expect((await holder.query("select 'still mine' as s")).rows).toEqual([{ s: "still mine" }]);
      await holder.query("commit");
      expect(pooler.pooler.pools.values().next().value!.waitingCount).toBe(0);
    } finally {
      await endAll(holder, waiter);
      await stopWithin(pooler, 3000);
    }
  });

  test("client_idle_timeout: an idle client gets 57P05 and is closed, while a busy one is left alone", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { clientIdleTimeoutMs: 1000 } });
    const idle = await connected(pooler);
    const busy = await connected(pooler);
    try {
      const idleError = nextError(idle);
      await idle.query("select 1");
      const started = Date.now();
      let busyQueries = 0;
      // The busy client queries all along; the idle one must be cut meanwhile.
      let cut: PgError | null = null;
      void idleError.then((e) => {
        cut = e;
      });
      while (cut === null && Date.now() - started < 5000) {
        await busy.query("select pg_sleep(0.1)");
        busyQueries++;
      }
      expect(cut).not.toBeNull();
      const error = cut as unknown as PgError;
      expect(error.code).toBe("57P05");
      expect(error.message).toBe("client_idle_timeout: the connection was idle for more than 1 s");
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      // Still busy, well past the idle client's timeout.
      while (Date.now() - started < 2000) {
        await busy.query("select pg_sleep(0.1)");
        busyQueries++;
      }
      expect(busyQueries).toBeGreaterThan(10);
      await waitUntil("pgmux to forget the idle client", () => pooler.pooler.clients.size === 1, { timeoutMs: 3000 });
    } finally {
      await endAll(idle, busy);
      await stopWithin(pooler, 3000);
    }
  });

  test("idle_transaction_timeout: a client idle inside a transaction gets 25P03, its work is rolled back, the server serves again", async () => {
    const table = `itt_${process.pid}`;
    await pgServer.psql(`drop table if exists ${table}; create table ${table} (id int)`);
    const pooler = await startPooler({
      postgres: pgServer,
      settings: { defaultPoolSize: 1, idleTransactionTimeoutMs: 1000 },
    });
    const client = await connected(pooler);
    let next: pg.Client | null = null;
    try {
      const cut = nextError(client);
      await client.query("begin");
      await client.query(`insert into ${table} values (1)`);
      const pid: number = (await client.query("select pg_backend_pid() as pid")).rows[0].pid;
      const error = await withDeadline(cut, 4000, "the 25P03 error");
      expect(error.code).toBe("25P03");
      expect(error.message).toBe("idle_transaction_timeout: the transaction was idle for more than 1 s");
      await waitUntil(
        `backend ${pid} to leave its transaction`,
        async () =>
          (await pgServer.psql(
            `select count(*) from pg_stat_activity where pid = ${pid} and state like 'idle in%'`,
          )) === "0",
        { timeoutMs: 5000, intervalMs: 100 },
      );
      expect(await pgServer.psql(`select count(*) from ${table}`)).toBe("0");
      next = await connected(pooler);
      expect((await next.query(`select count(*)::int as n from ${table}`)).rows).toEqual([{ n: 0 }]);
    } finally {
      await endAll(client, next);
      await stopWithin(pooler, 3000);
      await pgServer.psql(`drop table if exists ${table}`);
    }
  });

  test("query_timeout: a query running too long gets 57014 and its server-side query is cancelled", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { defaultPoolSize: 1, queryTimeoutMs: 1000 } });
    const client = await connected(pooler);
    let next: pg.Client | null = null;
    try {
      const pid: number = (await client.query("select pg_backend_pid() as pid")).rows[0].pid;
      const started = Date.now();
      const error = await rejection(client.query("select pg_sleep(30) /* query_timeout victim */"));
      expect(error.code).toBe("57014");
      expect(error.message).toBe("query_timeout: the query ran for more than 1 s");
      expect(Date.now() - started).toBeLessThan(4000);
      await waitUntil(
        `the pg_sleep on backend ${pid} to stop`,
        async () =>
          (await pgServer.psql(
            `select count(*) from pg_stat_activity where state = 'active' and query like '%query_timeout victim%' and pid <> pg_backend_pid()`,
          )) === "0",
        { timeoutMs: 5000, intervalMs: 100 },
      );
      next = await connected(pooler);
      expect((await next.query("select 'served' as s")).rows).toEqual([{ s: "served" }]);
    } finally {
      await endAll(client, next);
      await stopWithin(pooler, 3000);
    }
  });

  test("client_login_timeout: a connection that never logs in gets 08P01 and is closed", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { clientLoginTimeoutMs: 1000 } });
    try {
      // One sends nothing at all; one stops in the middle of SCRAM.
      const silent = await RawPeer.connect(pooler.port);
      const stalled = await RawPeer.connect(pooler.port);
      stalled.send(
        encodeStartupMessage({
          protocolVersion: ProtocolVersion.V3_0,
          parameters: [
            ["user", pgServer.user],
            ["database", pgServer.database],
          ],
        }),
      );
      expect((await stalled.next())?.type).toBe("AuthenticationSASL");
      const started = Date.now();
      for (const peer of [silent, stalled]) {
        const msg = await peer.next(4000);
        expect(msg?.type).toBe("ErrorResponse");
        const fields = (msg as Extract<BackendMessage, { type: "ErrorResponse" }>).fields;
        expect(fields.get("C")).toBe("08P01");
        expect(fields.get("M")).toBe("client_login_timeout: login did not complete within 1 s");
        await peer.closed();
      }
      expect(Date.now() - started).toBeLessThan(3000);
      expect(pooler.pooler.clients.size).toBe(0);
    } finally {
      await stopWithin(pooler, 3000);
    }
  });
});

describe("server-side timeouts", () => {
  test("server_idle_timeout closes servers left idle, and a new query opens one again", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { serverIdleTimeoutMs: 1000 } });
    const clients = [await connected(pooler), await connected(pooler), await connected(pooler)];
    try {
      const pids = await holdServersAtOnce(clients);
      expect(new Set(pids).size).toBe(3);
      expect(pooler.serverCount()).toBe(3);
      await waitUntil("the idle servers to be closed", () => pooler.serverCount() === 0, { timeoutMs: 5000 });
      await waitUntil(
        "their backends to end",
        async () =>
          (await pgServer.psql(`select count(*) from pg_stat_activity where pid in (${pids.join(",")})`)) === "0",
        { timeoutMs: 5000, intervalMs: 100 },
      );
      const pid: number = (await clients[0]!.query("select pg_backend_pid() as pid")).rows[0].pid;
      expect(pids).not.toContain(pid);
    } finally {
      await endAll(...clients);
      await stopWithin(pooler, 3000);
    }
  });

  test("server_lifetime closes servers once they are idle past it, never in the middle of a transaction", async () => {
    const pooler = await startPooler({
      postgres: pgServer,
      settings: { serverLifetimeMs: 1500, serverIdleTimeoutMs: 0 },
    });
    const a = await connected(pooler);
    const b = await connected(pooler);
    try {
      const [idlePid, busyPid] = await holdServersAtOnce([a, b], false);
      // b stays in its transaction past the lifetime; a's server sits idle.
      await b.query("select pg_sleep(2)");
      await waitUntil("the idle server past its lifetime to close", () => pooler.serverCount() === 1, {
        timeoutMs: 4000,
      });
      expect((await b.query("select pg_backend_pid() as pid")).rows[0].pid).toBe(busyPid);
      await b.query("commit");
      await waitUntil("the released server past its lifetime to close", () => pooler.serverCount() === 0, {
        timeoutMs: 4000,
      });
      const pid: number = (await a.query("select pg_backend_pid() as pid")).rows[0].pid;
      expect([idlePid, busyPid]).not.toContain(pid);
    } finally {
      await endAll(a, b);
      await stopWithin(pooler, 3000);
    }
  });

  test("server_connect_timeout: a server that accepts TCP and never answers gives the client 08001 by query_wait_timeout", async () => {
    const accepted: net.Socket[] = [];
    const blackHole = net.createServer((socket) => {
      accepted.push(socket);
      socket.on("error", () => {});
      // Read (and ignore) the startup packet, so that pgmux closing the connection is noticed here.
      socket.resume();
    });
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
    const port = (blackHole.address() as net.AddressInfo).port;
    const pooler = await startPooler({
      postgres: { ...pgServer.params(), port },
      settings: { serverConnectTimeoutMs: 1000, queryWaitTimeoutMs: 3000, serverLoginRetryMs: 500 },
    });
    try {
      const started = Date.now();
      const error = await connectError(pooler.params());
      const waited = Date.now() - started;
      expect(error.code).toBe("08001");
      expect(error.message).toMatch(/server_connect_timeout/);
      expect(waited).toBeLessThan(4500);
      expect(accepted.length).toBeGreaterThan(0);
      // pgmux gave up on the silent connections it opened.
      await waitUntil("pgmux to close its connections to the black hole", () => accepted.every((s) => s.closed), {
        timeoutMs: 3000,
      });
    } finally {
      await stopWithin(pooler, 3000);
      for (const s of accepted) s.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
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

async function endAll(...clients: (pg.Client | null)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.end().catch(() => {})));
}

/**
 * Each client opens a transaction at the same time, so each holds its own server; returns their backend pids.
 * With `commit`, the transactions end and the servers go back to the pool.
 */
async function holdServersAtOnce(clients: pg.Client[], commit = true): Promise<number[]> {
  for (const c of clients) await c.query("begin");
  const pids: number[] = [];
  for (const c of clients) pids.push((await c.query("select pg_backend_pid() as pid")).rows[0].pid);
  if (commit) for (const c of clients) await c.query("commit");
  else await clients[0]!.query("commit");
  return pids;
}

function nextError(client: pg.Client): Promise<PgError> {
  return new Promise((resolve) => client.once("error", (e) => resolve(e as PgError)));
}

async function rejection(promise: Promise<unknown>): Promise<PgError> {
  try {
    await promise;
  } catch (error) {
    return error as PgError;
  }
  throw new Error("expected the query to fail, and it succeeded");
}

async function connectError(params: pg.ClientConfig): Promise<PgError> {
  const client = new pg.Client(params);
  client.on("error", () => {});
  return rejection(client.connect().then(() => client.end()));
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
