/**
 * Pins and prepared statements as the admin side shows them, against a real PostgreSQL through pgmux in
 * transaction mode: a client that LISTENs is pinned (reason listen) in /v1/clients, /v1/pools, SHOW PINS
 * and /metrics until it UNLISTENs; named statements run by more clients than the pool has servers move the
 * hit and miss counters, and the statements held by clients, the pool and its servers are counted.
 * The scrapes are kept under test/artifacts/ and checked with `promtool check metrics` when it is there.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AdminServer } from "@pgmux/admin";
import type { ClientSnapshot, PoolerSettings, PoolSnapshot, ServerSnapshot } from "@pgmux/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCommand, type TestPostgres, testPostgres } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");
const PROMTOOL = "/usr/bin/promtool";
const POOL_SIZE = 2;
const CLIENTS = 6;
const RUNS = 25;

/** `name{labels}` (or `name`) → value, from Prometheus text exposition. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** The lines of the families this file is about, HELP and TYPE included: the excerpt kept as an artifact. */
function excerpt(text: string): string {
  const wanted =
    /^(# (HELP|TYPE) )?pgmux_(prepared_statement|prepared_statements|server_prepared|pins|clients_pinned|session_state)/;
  return `${text
    .split("\n")
    .filter((l) => wanted.test(l))
    .join("\n")}\n`;
}

async function promtoolCheck(text: string): Promise<void> {
  if (!existsSync(PROMTOOL)) {
    console.warn(
      `\n*** ${PROMTOOL} is not installed: skipping promtool check metrics (apt-get install prometheus) ***\n`,
    );
    return;
  }
  const result = await runCommand(PROMTOOL, ["check", "metrics"], { timeoutMs: 30_000, input: text });
  expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
}

describe("pins and prepared statements in the admin views, in transaction mode", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;
  let labels: string;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({
      postgres: server,
      settings: {
        poolMode: "transaction",
        defaultPoolSize: POOL_SIZE,
        // admin_users as the engine's settings carry them, for SHOW PINS.
        adminUsers: new Set([server.user]),
      } as unknown as Partial<PoolerSettings>,
    });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, processMetrics: false });
    await admin.start();
    labels = `database="${server.database}",user="${server.user}"`;
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await admin?.close();
    await instance?.stop();
  });

  async function get<T>(path: string): Promise<T> {
    const r = await fetch(`${admin.url}${path}`);
    expect(r.status, path).toBe(200);
    return (await r.json()) as T;
  }

  async function scrape(): Promise<string> {
    const r = await fetch(`${admin.url}/metrics`);
    expect(r.status).toBe(200);
    return r.text();
  }

  async function connect(applicationName: string, database = server.database): Promise<pg.Client> {
    const client = new pg.Client({ ...instance.params({ database }), application_name: applicationName });
    client.on("error", () => {});
    await client.connect();
    return client;
  }

  async function clientNamed(applicationName: string): Promise<ClientSnapshot> {
    const { clients } = await get<{ clients: ClientSnapshot[] }>("/v1/clients");
    const found = clients.find((c) => c.applicationName === applicationName);
    if (found === undefined) throw new Error(`no client ${applicationName} in /v1/clients`);
    return found;
  }

  async function thePool(): Promise<PoolSnapshot> {
    const { pools } = await get<{ pools: PoolSnapshot[] }>("/v1/pools");
    const pool = pools.find((p) => p.database === server.database && p.user === server.user);
    if (pool === undefined) throw new Error("the pool is not in /v1/pools");
    return pool;
  }

  test("a client doing LISTEN is pinned (reason listen) in /v1/clients, /v1/pools, SHOW PINS and /metrics, until UNLISTEN *", async () => {
    const listener = await connect("admin-pins-listener");
    const adminConsole = await connect("admin-pins-console", "pgbouncer");
    try {
      await listener.query("LISTEN admin_pins_jobs");
      await listener.query("LISTEN admin_pins_mail");
      await listener.query("SELECT 1");
      const pinned = await clientNamed("admin-pins-listener");
      expect(pinned.pins).toEqual({ listen: 2 });
      // Pinned: it keeps its server between transactions.
      expect(pinned.serverId).not.toBeNull();
      const pool = await thePool();
      expect(pool.sessionState).toMatchObject({ policy: "pin", pinnedClients: 1, refused: 0 });
      expect(pool.sessionState?.pinsByReason.listen).toBe(1);

      const { rows } = await adminConsole.query<Record<string, unknown>>("SHOW PINS");
      expect(rows).toEqual([
        { id: pinned.id, user: server.user, database: server.database, reason: "listen", count: 2 },
      ]);

      const whilePinned = await scrape();
      writeFileSync(join(ARTIFACTS, "admin-pins-metrics.txt"), excerpt(whilePinned));
      const m = parseMetrics(whilePinned);
      expect(m.get(`pgmux_pins_total{${labels},reason="listen"}`)).toBe(1);
      expect(m.get(`pgmux_pins_total{${labels},reason="advisory_lock"}`)).toBe(0);
      expect(m.get(`pgmux_clients_pinned{${labels}}`)).toBe(1);
      expect(m.get(`pgmux_session_state_refused_total{${labels}}`)).toBe(0);
      await promtoolCheck(whilePinned);

      await listener.query("UNLISTEN *");
      expect((await clientNamed("admin-pins-listener")).pins).toEqual({});
      expect((await adminConsole.query("SHOW PINS")).rows).toEqual([]);
      const after = parseMetrics(await scrape());
      expect(after.get(`pgmux_clients_pinned{${labels}}`)).toBe(0);
      // A counter: the pin that was, stays counted.
      expect(after.get(`pgmux_pins_total{${labels},reason="listen"}`)).toBe(1);
    } finally {
      await listener.end();
      await adminConsole.end();
    }
  });

  test("named statements from more clients than servers move the hit and miss counters; statements are counted per client, pool and server", async () => {
    const before = parseMetrics(await scrape());
    const hits0 = before.get(`pgmux_prepared_statement_hits_total{${labels}}`) ?? 0;
    const misses0 = before.get(`pgmux_prepared_statement_misses_total{${labels}}`) ?? 0;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, k) => connect(`admin-prepared-${k}`)));
    try {
      await Promise.all(
        clients.map(async (c, k) => {
          for (let i = 0; i < RUNS; i++) {
            const r = await c.query<{ n: number }>({
              name: "admin_prepared_sum",
              text: "select $1::int + $2::int as n",
              values: [i, k],
            });
            expect(r.rows).toEqual([{ n: i + k }]);
          }
        }),
      );

      const { clients: listed } = await get<{ clients: ClientSnapshot[] }>("/v1/clients");
      const ours = listed.filter((c) => c.applicationName.startsWith("admin-prepared-"));
      expect(ours).toHaveLength(CLIENTS);
      for (const c of ours) expect(c.preparedStatements).toBe(1);
      const { servers } = await get<{ servers: ServerSnapshot[] }>("/v1/servers");
      expect(servers.length).toBeLessThanOrEqual(POOL_SIZE);
      const held = servers.reduce((sum, s) => sum + s.preparedStatements, 0);
      const pool = await thePool();
      expect(pool.preparedStatements?.cached).toBe(1);
      expect(pool.preparedStatements?.onServers).toBe(held);

      const text = await scrape();
      writeFileSync(join(ARTIFACTS, "admin-prepared-statements-metrics.txt"), excerpt(text));
      const m = parseMetrics(text);
      const hits = (m.get(`pgmux_prepared_statement_hits_total{${labels}}`) ?? 0) - hits0;
      const misses = (m.get(`pgmux_prepared_statement_misses_total{${labels}}`) ?? 0) - misses0;
      // Each server prepared the one text once, when first asked for it; every other use found it there.
      expect(misses).toBeGreaterThanOrEqual(1);
      expect(misses).toBeLessThanOrEqual(POOL_SIZE);
      expect(misses).toBe(held);
      expect(hits).toBeGreaterThanOrEqual(CLIENTS * RUNS - misses);
      // At most one look per Bind and per client's first Parse.
      expect(hits + misses).toBeLessThanOrEqual(CLIENTS * (RUNS + 1));
      expect(m.get(`pgmux_prepared_statement_evictions_total{${labels}}`)).toBe(0);
      expect(m.get(`pgmux_prepared_statements{${labels}}`)).toBe(1);
      expect(m.get(`pgmux_server_prepared_statements{${labels}}`)).toBe(held);
      await promtoolCheck(text);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe("session_state = error, in the admin views", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({
      postgres: server,
      settings: { poolMode: "transaction", defaultPoolSize: POOL_SIZE, sessionState: "error" },
    });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, processMetrics: false });
    await admin.start();
  });

  afterAll(async () => {
    await admin?.close();
    await instance?.stop();
  });

  test("a refused LISTEN is counted, and pins nobody", async () => {
    const client = new pg.Client(instance.params());
    client.on("error", () => {});
    await client.connect();
    try {
      await expect(client.query("LISTEN admin_refused")).rejects.toMatchObject({ code: "0A000" });
      expect((await client.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      const { pools } = (await (await fetch(`${admin.url}/v1/pools`)).json()) as { pools: PoolSnapshot[] };
      expect(pools[0]?.sessionState).toMatchObject({ policy: "error", pinnedClients: 0, refused: 1 });
      const m = parseMetrics(await (await fetch(`${admin.url}/metrics`)).text());
      const labels = `database="${server.database}",user="${server.user}"`;
      expect(m.get(`pgmux_session_state_refused_total{${labels}}`)).toBe(1);
      expect(m.get(`pgmux_pins_total{${labels},reason="listen"}`)).toBe(0);
      expect(m.get(`pgmux_clients_pinned{${labels}}`)).toBe(0);
    } finally {
      await client.end();
    }
  });
});
