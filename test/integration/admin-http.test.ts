/**
 * The admin HTTP server beside a running pgmux with real clients: probes, the JSON API, and the control
 * actions (refused without the token, working with it). Pause, resume and reconnect need the engine's
 * Pooler.pause/resume/reconnect: until those are wired the endpoints answer 501 and these tests check that
 * they say so.
 */
import { AdminServer } from "@pgmux/admin";
import type { Pooler } from "@pgmux/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

const TOKEN = "admin-http-test-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function getJson<T = Record<string, unknown>>(
  admin: AdminServer,
  path: string,
): Promise<{ status: number; body: T }> {
  const r = await fetch(`${admin.url}${path}`);
  return { status: r.status, body: (await r.json()) as T };
}

async function post(admin: AdminServer, path: string, headers: Record<string, string> = AUTH) {
  const r = await fetch(`${admin.url}${path}`, { method: "POST", headers });
  return { status: r.status, body: (await r.json()) as { ok?: boolean; error?: { code: string; message: string } } };
}

interface ClientRow {
  id: number;
  state: string;
  applicationName: string;
  serverId: number | null;
}

interface ServerRow {
  id: number;
  clientId: number | null;
  backendPid: number;
  pgbouncerState: string;
}

async function clientNamed(admin: AdminServer, applicationName: string): Promise<ClientRow | undefined> {
  const { body } = await getJson<{ clients: ClientRow[] }>(admin, "/v1/clients");
  return body.clients.find((c) => c.applicationName === applicationName);
}

function engineHas(pooler: Pooler, method: "pause" | "resume" | "reconnect"): boolean {
  return typeof (pooler as unknown as Record<string, unknown>)[method] === "function";
}

describe("the admin server beside a running pgmux", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;
  const clients: pg.Client[] = [];

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2 } });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, apiToken: TOKEN });
    await admin.start();
  });

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await admin?.close();
    await instance?.stop();
  });

  async function client(applicationName: string): Promise<pg.Client> {
    const c = await connect({ ...instance.params(), application_name: applicationName });
    clients.push(c);
    return c;
  }

  test("probes: alive, started, and ready with no pool yet", async () => {
    expect((await getJson(admin, "/livez")).status).toBe(200);
    expect(await getJson(admin, "/startupz")).toEqual({ status: 200, body: { status: "started" } });
    expect(await getJson(admin, "/readyz")).toEqual({ status: 200, body: { status: "ready", reasons: [] } });
  });

  test("the JSON API shows a client, the server it holds in a transaction, and that server's backend", async () => {
    const c = await client("admin-http-json");
    await c.query("BEGIN");
    const pid = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const me = await clientNamed(admin, "admin-http-json");
    expect(me).toMatchObject({ state: "active" });
    const { body } = await getJson<{ servers: ServerRow[] }>(admin, "/v1/servers");
    const mine = body.servers.find((s) => s.id === me!.serverId);
    expect(mine).toMatchObject({ clientId: me!.id, backendPid: pid, pgbouncerState: "active" });
    await c.query("COMMIT");
    const pools = await getJson<{ pools: { database: string; totals: { transactions: number } }[] }>(
      admin,
      "/v1/pools",
    );
    expect(pools.body.pools.find((p) => p.database === server.database)?.totals.transactions).toBeGreaterThan(0);
  });

  test("control actions refuse a missing or wrong token with 401", async () => {
    for (const path of [
      "/v1/pause",
      "/v1/resume",
      "/v1/reconnect",
      "/v1/reload",
      "/v1/kill-client/1",
      "/v1/shutdown",
    ]) {
      const none = await post(admin, path, {});
      expect(none.status, path).toBe(401);
      expect(none.body.error?.code).toBe("unauthorized");
      const wrong = await post(admin, path, { authorization: "Bearer not-the-token" });
      expect(wrong.status, path).toBe(401);
    }
    expect(instance.pooler.clients.size).toBeGreaterThan(0); // nothing was shut down or killed
  });

  test("without admin_api_token the control actions are off (403)", async () => {
    const closed = new AdminServer({ pooler: instance.pooler, port: 0, processMetrics: false });
    await closed.start();
    try {
      const r = await post(closed, "/v1/pause", AUTH);
      expect(r.status).toBe(403);
      expect(r.body.error?.code).toBe("control_disabled");
    } finally {
      await closed.close();
    }
  });

  test("kill-client disconnects that client with 57P01; an unknown id is 404", async () => {
    const victim = await client("admin-http-victim");
    const row = await clientNamed(admin, "admin-http-victim");
    const killed = await post(admin, `/v1/kill-client/${row!.id}`);
    expect(killed).toEqual({ status: 200, body: { ok: true, action: "kill-client", client: row!.id } });
    const error = await victim.query("SELECT 1").then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(error).not.toBeNull();
    await waitUntil(
      "the killed client gone",
      async () => (await clientNamed(admin, "admin-http-victim")) === undefined,
      {
        timeoutMs: 5000,
      },
    );
    const missing = await post(admin, "/v1/kill-client/987654321");
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe("client_not_found");
    expect((await post(admin, "/v1/kill-client/abc")).status).toBe(400);
  });

  test("pause holds new transactions and resume releases them without errors (501 until the engine can pause)", async () => {
    if (!engineHas(instance.pooler, "pause")) {
      const r = await post(admin, "/v1/pause");
      expect(r.status).toBe(501);
      expect(r.body.error?.message).toContain("Pooler.pause()");
      return;
    }
    const a = await client("admin-http-paused");
    expect((await post(admin, "/v1/pause")).status).toBe(200);
    expect((await getJson(admin, "/readyz")).status).toBe(503);
    expect((await post(admin, "/v1/pause")).status).toBe(409);
    const held = a.query<{ one: number }>("SELECT 1 AS one");
    await waitUntil(
      "the query held while paused",
      async () => (await clientNamed(admin, "admin-http-paused"))?.state === "waiting",
      {
        timeoutMs: 5000,
      },
    );
    expect((await post(admin, "/v1/resume")).status).toBe(200);
    expect((await held).rows).toEqual([{ one: 1 }]);
    expect((await getJson(admin, "/readyz")).status).toBe(200);
  });

  test("reconnect replaces the servers (501 until the engine can reconnect)", async () => {
    if (!engineHas(instance.pooler, "reconnect")) {
      const r = await post(admin, "/v1/reconnect");
      expect(r.status).toBe(501);
      expect(r.body.error?.message).toContain("Pooler.reconnect()");
      return;
    }
    const c = await client("admin-http-reconnect");
    const pidBefore = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const before = (await getJson<{ servers: ServerRow[] }>(admin, "/v1/servers")).body.servers.map(
      (s) => s.backendPid,
    );
    expect(before).toContain(pidBefore);
    expect((await post(admin, "/v1/reconnect")).status).toBe(200);
    const pidAfter = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    expect(before).not.toContain(pidAfter);
  });

  test("reload is 501 when the process gave none (only the pgmux command knows the file)", async () => {
    const r = await post(admin, "/v1/reload");
    expect(r.status).toBe(501);
  });

  test("shutdown stops the pooler; /metrics still answers and /readyz says why it is not ready", async () => {
    const r = await post(admin, "/v1/shutdown");
    expect(r).toEqual({ status: 200, body: { ok: true, action: "shutdown", mode: "immediate" } as never });
    await waitUntil("the pooler's clients gone", () => instance.pooler.clients.size === 0, { timeoutMs: 10_000 });
    const metrics = await fetch(`${admin.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("pgmux_transactions_total");
    const ready = await getJson<{ reasons: string[] }>(admin, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body.reasons).toContain("pgmux is shutting down");
  });
});

describe("readiness when no pool can reach its server", () => {
  let instance: PoolerInstance;
  let admin: AdminServer;

  beforeAll(async () => {
    const server = await testPostgres();
    const deadPort = await freePort();
    instance = await startPooler({
      postgres: { ...server.params(), port: deadPort },
      settings: { serverConnectTimeoutMs: 2000, queryWaitTimeoutMs: 5000 },
    });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, processMetrics: false });
    await admin.start();
  });

  afterAll(async () => {
    await admin?.close();
    await instance?.stop();
  });

  test("/readyz fails, naming the failure", async () => {
    const c = new pg.Client({ ...instance.params(), connectionTimeoutMillis: 10_000 });
    c.on("error", () => {});
    await c.connect().catch(() => {});
    await c.end().catch(() => {});
    const r = await fetch(`${admin.url}/readyz`);
    expect(r.status).toBe(503);
    const body = (await r.json()) as { reasons: string[] };
    expect(body.reasons.join(" ")).toMatch(/no pool can reach its server \(last failure: .+\)/);
  });
});
