import { TransactionStatus } from "@pgmux/protocol";
import { pino } from "pino";
import { describe, expect, test } from "vitest";
import type { ClientSession } from "./client-session.js";
import { ClientStatements } from "./client-statements.js";
import { PoolHistograms } from "./duration-histogram.js";
import type { Pool } from "./pool.js";
import { Pooler } from "./pooler.js";
import { DEFAULT_SETTINGS, type PoolerSettings } from "./pooler-settings.js";
import { ServerStatements } from "./prepared-statements.js";
import type { ServerConnection } from "./server-connection.js";
import { SessionState } from "./session-state.js";
import {
  clientStateCounts,
  errorCounts,
  PinReason,
  pinTotals,
  poolerTotals,
  preparedStatementTotals,
  snapshotClients,
  snapshotPools,
  snapshotServers,
} from "./snapshot.js";

/** A pooler that never listens, on a clock the test moves. */
function quietPooler(settings: Partial<PoolerSettings> = {}) {
  const clock = { t: 10_000 };
  const pooler = new Pooler({
    settings: {
      ...DEFAULT_SETTINGS,
      fallbackDatabase: { name: "*", host: "127.0.0.1", port: 5432, dbname: "*", serverStartupParameters: new Map() },
      ...settings,
    },
    log: pino({ level: "silent" }),
    now: () => clock.t,
  });
  return { pooler, clock };
}

let nextId = 1000;

/** A client as the snapshot reads it: no socket behind it. */
function fakeClient(
  pooler: Pooler,
  pool: Pool | null,
  over: Partial<Record<keyof ClientSession, unknown>> = {},
): ClientSession {
  const client = {
    id: nextId++,
    state: "idle",
    user: pool?.user ?? "alice",
    database: pool?.database.name ?? "shop",
    pool,
    server: null,
    remote: "10.0.0.7:51234",
    socket: { localAddress: "127.0.0.1", localPort: 6432 },
    params: new Map([["application_name", "billing"]]),
    connectedAt: 1_000,
    lastActivityAt: 2_000,
    waitingSince: 0,
    owed: 0,
    session: null,
    statements: null,
    ...over,
  } as unknown as ClientSession;
  pooler.clients.add(client);
  return client;
}

function fakeServer(pool: Pool, over: Partial<Record<keyof ServerConnection, unknown>> = {}): ServerConnection {
  const server = {
    id: nextId++,
    state: "idle",
    pool,
    client: null,
    status: TransactionStatus.Idle,
    cancelsInFlight: 0,
    backendPid: 4242,
    createdAt: 500,
    lastUsedAt: 9_000,
    params: new Map<string, string>(),
    socket: { localAddress: "127.0.0.1", localPort: 40000 },
    statements: new ServerStatements(200),
    ...over,
  } as unknown as ServerConnection;
  pool.servers.add(server);
  return server;
}

describe("snapshots", () => {
  test("a pool's clients and servers are counted by where they are, the oldest wait measured", () => {
    const { pooler, clock } = quietPooler({ serverCheckDelayMs: 30_000 });
    const pool = pooler.poolFor("shop", "alice")!;
    const linked = fakeServer(pool, { state: "active" });
    fakeClient(pooler, pool, { state: "active", server: linked, owed: 1 });
    fakeClient(pooler, pool, { state: "idle" });
    fakeClient(pooler, pool, { state: "waiting", waitingSince: clock.t - 1500 });
    fakeClient(pooler, pool, { state: "waiting", waitingSince: clock.t - 250 });
    fakeClient(pooler, null, { state: "auth" });
    fakeServer(pool, { state: "idle", lastUsedAt: clock.t - 100 });
    fakeServer(pool, { state: "idle", lastUsedAt: clock.t - 40_000 });
    fakeServer(pool, { state: "internal" });
    fakeServer(pool, { state: "login" });
    fakeServer(pool, { state: "idle", cancelsInFlight: 1 });
    const [snap] = snapshotPools(pooler);
    expect(snap).toMatchObject({
      name: "shop/alice",
      database: "shop",
      user: "alice",
      mode: "session",
      clients: { active: 1, idle: 1, waiting: 2 },
      servers: { active: 1, idle: 1, used: 1, tested: 1, login: 1, beingCanceled: 1 },
      maxWaitSeconds: 1.5,
      reachable: true,
    });
  });

  test("counters are reported in seconds and summed over pools", () => {
    const { pooler } = quietPooler();
    const a = pooler.poolFor("shop", "alice")!;
    const b = pooler.poolFor("shop", "bob")!;
    Object.assign(a.stats, { transactions: 3, queries: 9, waitMicros: 1_500_000, transactionMicros: 250_000 });
    Object.assign(b.stats, { transactions: 1, queries: 2, bytesFromClients: 100, bytesFromServers: 4000 });
    const { querySeconds, ...totals } = snapshotPools(pooler)[0]!.totals;
    expect(totals).toEqual({
      transactions: 3,
      queries: 9,
      bytesFromClients: 0,
      bytesFromServers: 0,
      serverAssignments: 0,
      waitSeconds: 1.5,
      transactionSeconds: 0.25,
    });
    // Null while the engine keeps no query histogram, 0 once it does and nothing ran.
    expect([null, 0]).toContain(querySeconds);
    expect(poolerTotals(pooler)).toMatchObject({
      transactions: 4,
      queries: 11,
      bytesFromClients: 100,
      bytesFromServers: 4000,
      waitSeconds: 1.5,
    });
  });

  test("a pool whose engine keeps histograms reports them, and the query time they add up to", () => {
    const { pooler } = quietPooler();
    const pool = pooler.poolFor("shop", "alice")!;
    const histograms = new PoolHistograms();
    Object.assign(pool, { histograms });
    histograms.query.observe(2);
    histograms.query.observe(8);
    histograms.transaction.observe(10);
    const snap = snapshotPools(pooler)[0]!;
    expect(snap.histograms?.query.count).toBe(2);
    expect(snap.histograms?.transaction.count).toBe(1);
    expect(snap.totals.querySeconds).toBeCloseTo(0.01, 10);
    expect(poolerTotals(pooler).querySeconds).toBeCloseTo(0.01, 10);
  });

  test("a pool that failed to log in and has no server up is unreachable", () => {
    const { pooler } = quietPooler();
    const pool = pooler.poolFor("shop", "alice")!;
    pool.lastConnectFailure = "connection refused";
    expect(snapshotPools(pooler)[0]!.reachable).toBe(false);
    fakeServer(pool, { state: "idle" });
    expect(snapshotPools(pooler)[0]!.reachable).toBe(true);
  });

  test("clients and servers are listed with wall-clock times and their links", () => {
    const { pooler, clock } = quietPooler();
    const pool = pooler.poolFor("shop", "alice")!;
    const server = fakeServer(pool, { state: "active", lastUsedAt: clock.t - 1000 });
    const client = fakeClient(pooler, pool, { state: "active", server, lastActivityAt: clock.t - 1000 });
    (server as { client: ClientSession | null }).client = client;
    const before = Date.now();
    const [c] = snapshotClients(pooler);
    const [s] = snapshotServers(pooler);
    expect(c).toMatchObject({
      id: client.id,
      pool: "shop/alice",
      addr: "10.0.0.7",
      port: 51234,
      applicationName: "billing",
      serverId: server.id,
      waitSeconds: 0,
    });
    expect(c!.lastActivityAt).toBeGreaterThanOrEqual(before - 1000 - 5);
    expect(c!.lastActivityAt).toBeLessThanOrEqual(Date.now() - 1000 + 5);
    expect(s).toMatchObject({
      id: server.id,
      pgbouncerState: "active",
      clientId: client.id,
      transactionStatus: "I",
      applicationName: "billing",
      host: "127.0.0.1",
      port: 5432,
    });
  });

  test("error and client-state counts are plain records", () => {
    const { pooler } = quietPooler();
    pooler.stats.countRefused("too_many_clients");
    pooler.stats.countPoolerError("query_timeout");
    fakeClient(pooler, null, { state: "startup" });
    expect(errorCounts(pooler)).toEqual({
      serverBySqlState: {},
      poolerByCode: { query_timeout: 1 },
      refusedByReason: { too_many_clients: 1 },
    });
    expect(clientStateCounts(pooler).startup).toBe(1);
  });

  test("a transaction pool reports its prepared-statement counters, shared statements and those its servers hold", () => {
    const { pooler } = quietPooler({ poolMode: "transaction" });
    const pool = pooler.poolFor("shop", "alice")!;
    const cache = pool.statements!;
    const prepare = (text: string) => {
      const body = definition(text);
      return cache.statementFor(body, 0, body.length);
    };
    const select = prepare("select 1");
    const insert = prepare("insert into t values ($1)");
    Object.assign(cache.stats, { hits: 40, misses: 3, evictions: 1 });
    const a = new ServerStatements(200);
    a.add(select);
    a.add(insert);
    const b = new ServerStatements(200);
    b.add(select);
    const server = fakeServer(pool, { statements: a });
    fakeServer(pool, { statements: b });
    const statements = new ClientStatements(cache);
    statements.define("q1", select);
    statements.define("q2", insert);
    const client = fakeClient(pooler, pool, { statements, session: new SessionState() });
    expect(snapshotPools(pooler)[0]!.preparedStatements).toEqual({
      hits: 40,
      misses: 3,
      evictions: 1,
      cached: 2,
      onServers: 3,
    });
    expect(snapshotClients(pooler).find((c) => c.id === client.id)?.preparedStatements).toBe(2);
    expect(snapshotServers(pooler).find((s) => s.id === server.id)?.preparedStatements).toBe(2);
    expect(preparedStatementTotals(pooler)).toEqual({ hits: 40, misses: 3, evictions: 1 });
  });

  test("a session pool carries no statements and tracks no session state: those fields are null", () => {
    const { pooler } = quietPooler({ poolMode: "session" });
    const pool = pooler.poolFor("shop", "alice")!;
    fakeClient(pooler, pool);
    fakeServer(pool);
    const snap = snapshotPools(pooler)[0]!;
    expect(snap.preparedStatements).toBeNull();
    expect(snap.sessionState).toBeNull();
    expect(snapshotClients(pooler)[0]).toMatchObject({ pins: null, replayedSets: null, preparedStatements: null });
    expect(snapshotServers(pooler)[0]?.preparedStatements).toBe(0);
  });

  test("pins are listed per client with their counts, and per pool as clients pinned now and pins by reason", () => {
    const { pooler } = quietPooler({ poolMode: "transaction", sessionState: "pin" });
    const pool = pooler.poolFor("shop", "alice")!;
    const listener = new SessionState();
    listener.apply([
      { kind: "pin", reason: "listen", key: "jobs" },
      { kind: "pin", reason: "listen", key: "mail" },
      { kind: "pin", reason: "advisory_lock" },
      { kind: "set", name: "statement_timeout", sql: "SET statement_timeout = '5s'" },
      { kind: "set", name: "search_path", sql: "SET search_path = app" },
    ]);
    const setter = new SessionState();
    setter.apply([{ kind: "set", name: "statement_timeout", sql: "SET statement_timeout = '1s'" }]);
    const pinned = fakeClient(pooler, pool, { session: listener });
    const unpinned = fakeClient(pooler, pool, { session: setter });
    pool.pinsByReason.set("listen", 4);
    pool.pinsByReason.set("advisory_lock", 1);
    pool.stats.refusedSessionState = 2;
    const clients = snapshotClients(pooler);
    expect(clients.find((c) => c.id === pinned.id)).toMatchObject({
      pins: { listen: 2, advisory_lock: 1 },
      replayedSets: 2,
    });
    expect(clients.find((c) => c.id === unpinned.id)).toMatchObject({ pins: {}, replayedSets: 1 });
    const snap = snapshotPools(pooler)[0]!;
    expect(snap.sessionState).toEqual({
      policy: "pin",
      pinnedClients: 1,
      pinsByReason: {
        listen: 4,
        advisory_lock: 1,
        temp_table: 0,
        cursor_with_hold: 0,
        sql_prepare: 0,
        load: 0,
        set_config: 0,
        unrecognized_set: 0,
      },
      refused: 2,
    });
    expect(Object.keys(snap.sessionState!.pinsByReason).sort()).toEqual(Object.values(PinReason).sort());
    const totals = pinTotals(pooler);
    expect(totals).toMatchObject({ pinnedClients: 1, refused: 2 });
    expect(totals.byReason).toMatchObject({ listen: 4, advisory_lock: 1, load: 0 });
  });
});

/** A Parse body after the statement name: the query text, its NUL, and no parameter types. */
function definition(text: string): Buffer {
  return Buffer.concat([Buffer.from(`${text}\0`, "utf8"), Buffer.from([0, 0])]);
}
