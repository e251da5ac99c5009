import pg from "pg";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

async function connect(instance: PoolerInstance): Promise<pg.Client> {
  const c = new pg.Client(instance.params());
  c.on("error", () => {});
  await c.connect();
  return c;
}

/** The SQLSTATE a query fails with, or "ok". */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "ok",
    (e: Error & { code?: string }) => e.code ?? e.message,
  );
}

/** Drain and reload on the engine itself, in session pooling, where a client holds its server between transactions. */
describe("drain and reload in session pooling", () => {
  let server: TestPostgres;
  let instance: PoolerInstance | undefined;

  beforeAll(async () => {
    server = await testPostgres();
  });

  afterEach(async () => {
    await instance?.stop();
    instance = undefined;
  });

  test("a drain closes a session between transactions at once and one inside a transaction at its end", async () => {
    instance = await startPooler({ postgres: server, settings: { poolMode: "session", defaultPoolSize: 4 } });
    const between = await connect(instance);
    const inside = await connect(instance);
    await between.query("select 1");
    await inside.query("begin");
    await inside.query("select 1");
    const drained = instance.pooler.drain({ timeoutMs: 10_000 });
    // The one between transactions is let go now; the other finishes its transaction undisturbed.
    await waitUntil("the idle session to be closed", () => instance!.pooler.clients.size === 1, { timeoutMs: 5000 });
    expect(await outcome(between.query("select 1"))).not.toBe("ok");
    expect((await inside.query("select 2 as n")).rows[0].n).toBe(2);
    await inside.query("commit");
    const result = await drained;
    expect(result).toMatchObject({ timedOut: false, cancelled: 0, clientsLeft: 0 });
    expect(await outcome(inside.query("select 3"))).not.toBe("ok");
    // A new client is refused with 57P01 while draining.
    const late = new pg.Client(instance.params());
    late.on("error", () => {});
    expect(await outcome(late.connect())).toBe("57P01");
    await between.end().catch(() => {});
    await inside.end().catch(() => {});
  });

  test("a smaller pool keeps its sessions; their servers close as the sessions end, down to the new size", async () => {
    instance = await startPooler({ postgres: server, settings: { poolMode: "session", defaultPoolSize: 4 } });
    const clients = await Promise.all([1, 2, 3, 4].map(() => connect(instance!)));
    for (const c of clients) await c.query("select 1");
    expect(instance.serverCount()).toBe(4);
    instance.pooler.reload({ ...instance.pooler.settings, defaultPoolSize: 2 });
    const pool = [...instance.pooler.pools.values()][0]!;
    expect(pool.size).toBe(2);
    // Nobody is disconnected by the reload.
    for (const c of clients) expect((await c.query("select 1 as n")).rows[0].n).toBe(1);
    await clients[0]!.end();
    await clients[1]!.end();
    await waitUntil("servers to follow the new size", () => instance!.serverCount() === 2, { timeoutMs: 5000 });
    await clients[2]!.end();
    await waitUntil("an idle server to stay", () => pool.idleCount === 1, { timeoutMs: 5000 });
    expect(instance.serverCount()).toBe(2);
    // Back to a transaction pool: the remaining session now gives its server back between transactions.
    instance.pooler.reload({ ...instance.pooler.settings, poolMode: "transaction" });
    expect(pool.mode).toBe("transaction");
    await clients[3]!.query("select 1");
    await waitUntil("the server to go back to the pool", () => pool.idleCount === 2, { timeoutMs: 5000 });
    await clients[3]!.end();
  });

  test("a database whose server login changes keeps its clients; its servers are replaced as they become idle", async () => {
    const role = `reload_role_${process.pid}`;
    await server.createRole(role, "role secret");
    instance = await startPooler({
      postgres: server,
      settings: { poolMode: "transaction", defaultPoolSize: 2 },
      users: { [role]: "role secret" },
    });
    const c = await connect(instance);
    expect((await c.query("select current_user as u")).rows[0].u).toBe(server.user);
    const s = instance.pooler.settings;
    // The "*" entry now logs in to PostgreSQL as the other role (forced user), with its password.
    instance.pooler.reload({ ...s, fallbackDatabase: { ...s.fallbackDatabase!, user: role, password: "role secret" } });
    expect((await c.query("select current_user as u")).rows[0].u).toBe(role);
    await waitUntil("the old server to be gone", () => instance!.serverCount() === 1, { timeoutMs: 5000 });
    await c.end();
  });
});
