import {
  type BackendMessage,
  decodeBackendMessage,
  encodeBind,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeSync,
  encodeTerminate,
  FrameReader,
  TransactionStatus,
} from "@pgmux/protocol";
import { pino } from "pino";
import { describe, expect, test } from "vitest";
import {
  AdminConsole,
  adminControl,
  ControlUnavailableError,
  configureAdminConsole,
  engineControl,
  isAdminConsoleDatabase,
  type PoolerControl,
  pgbouncerView,
  SHOW_VIEWS,
} from "./admin-console.js";
import type { ClientSession } from "./client-session.js";
import { PgmuxConfigSchema } from "./config/config-schema.js";
import type { Pool } from "./pool.js";
import { Pooler } from "./pooler.js";
import { DEFAULT_SETTINGS, type PoolerSettings } from "./pooler-settings.js";
import { ServerStatements } from "./prepared-statements.js";
import type { ServerConnection } from "./server-connection.js";
import { SessionState } from "./session-state.js";

function quietPooler(settings: Partial<PoolerSettings> & Record<string, unknown> = {}) {
  const clock = { t: 100_000 };
  const pooler = new Pooler({
    settings: {
      ...DEFAULT_SETTINGS,
      users: new Map([
        ["root", "x"],
        ["watcher", "y"],
      ]),
      fallbackDatabase: { name: "*", host: "10.1.1.1", port: 5432, dbname: "*", serverStartupParameters: new Map() },
      adminUsers: new Set(["root"]),
      statsUsers: new Set(["watcher"]),
      ...settings,
    } as PoolerSettings,
    log: pino({ level: "silent" }),
    now: () => clock.t,
  });
  return { pooler, clock };
}

let nextId = 5000;

interface ConsoleClient {
  client: ClientSession;
  written: Buffer[];
  closedWith: () => string | null;
}

/** A logged-in client as the console needs it: its socket records what is written. */
function consoleClient(pooler: Pooler, user: string, over: Record<string, unknown> = {}): ConsoleClient {
  const written: Buffer[] = [];
  let closed: string | null = null;
  const client = {
    id: nextId++,
    state: "auth",
    user,
    database: "pgbouncer",
    pool: null,
    server: null,
    pooler,
    remote: "127.0.0.1:50000",
    params: new Map([["application_name", "psql"]]),
    socket: {
      write: (b: Buffer) => {
        written.push(Buffer.from(b));
        return true;
      },
      localAddress: "127.0.0.1",
      localPort: 6432,
    },
    log: pino({ level: "silent" }),
    cancelPid: 0,
    cancelKey: Buffer.alloc(0),
    connectedAt: 1000,
    lastActivityAt: 1000,
    waitingSince: 0,
    owed: 0,
    close(reason: string) {
      closed = reason;
      (this as { state: string }).state = "closed";
    },
    ...over,
  } as unknown as ClientSession;
  pooler.clients.add(client);
  return { client, written, closedWith: () => closed };
}

function decodeAll(parts: Buffer[]): BackendMessage[] {
  const out: BackendMessage[] = [];
  const reader = new FrameReader((type, buf, start, end) => out.push(decodeBackendMessage(type, buf, start, end)), {
    maxMessageBytes: 1 << 20,
  });
  reader.push(Buffer.concat(parts));
  return out;
}

/** Opens a console for `user`, sends `bytes`, and returns what came back after the login. */
async function converse(pooler: Pooler, user: string, ...bytes: Buffer[]): Promise<BackendMessage[]> {
  const c = consoleClient(pooler, user);
  const session = AdminConsole.open(c.client)!;
  c.written.length = 0;
  for (const b of bytes) session.onData(b);
  await session.settled();
  return decodeAll(c.written);
}

function errorOf(messages: BackendMessage[]): { code: string; message: string } | undefined {
  const e = messages.find((m) => m.type === "ErrorResponse");
  return e === undefined || e.type !== "ErrorResponse"
    ? undefined
    : { code: e.fields.get("C") ?? "", message: e.fields.get("M") ?? "" };
}

function tableOf(messages: BackendMessage[]) {
  const desc = messages.find((m) => m.type === "RowDescription");
  if (desc?.type !== "RowDescription") throw new Error("no RowDescription");
  const rows = messages.flatMap((m) => (m.type === "DataRow" ? [m.values.map((v) => v?.toString() ?? null)] : []));
  return { columns: desc.fields.map((f) => [f.name, f.typeOid] as const), rows };
}

function fakeServer(pool: Pool, over: Record<string, unknown> = {}): ServerConnection {
  const server = {
    id: nextId++,
    state: "idle",
    pool,
    client: null,
    status: TransactionStatus.Idle,
    cancelsInFlight: 0,
    backendPid: 777,
    createdAt: 500,
    lastUsedAt: 99_000,
    params: new Map<string, string>(),
    socket: { localAddress: "127.0.0.1", localPort: 40001 },
    statements: new ServerStatements(200),
    ...over,
  } as unknown as ServerConnection;
  pool.servers.add(server);
  return server;
}

describe("admin console", () => {
  test("the console databases are pgbouncer and pgmux", () => {
    expect(isAdminConsoleDatabase("pgbouncer")).toBe(true);
    expect(isAdminConsoleDatabase("pgmux")).toBe(true);
    expect(isAdminConsoleDatabase("postgres")).toBe(false);
  });

  test("an admin user logs in: AuthenticationOk, parameters, its key, ReadyForQuery", () => {
    const { pooler } = quietPooler();
    const c = consoleClient(pooler, "root");
    expect(AdminConsole.open(c.client)).not.toBeNull();
    const messages = decodeAll(c.written);
    expect(messages[0]?.type).toBe("AuthenticationOk");
    expect(messages).toContainEqual({ type: "ParameterStatus", name: "server_version", value: "1.18.0/bouncer" });
    expect(messages.some((m) => m.type === "BackendKeyData")).toBe(true);
    expect(messages.at(-1)).toEqual({ type: "ReadyForQuery", status: TransactionStatus.Idle });
    expect(c.client.state).toBe("idle");
  });

  test("a user in neither admin_users nor stats_users is turned away with 28000", () => {
    const { pooler } = quietPooler();
    const c = consoleClient(pooler, "mallory");
    expect(AdminConsole.open(c.client)).toBeNull();
    const [error] = decodeAll(c.written);
    expect(error?.type === "ErrorResponse" && error.fields.get("C")).toBe("28000");
    expect(error?.type === "ErrorResponse" && error.fields.get("V")).toBe("FATAL");
    expect(c.closedWith()).toBe("not an admin console user");
  });

  test("SHOW POOLS answers with PgBouncer 1.18's columns and types, one row per pool", async () => {
    const { pooler, clock } = quietPooler();
    const pool = pooler.poolFor("shop", "alice")!;
    fakeServer(pool, { state: "idle" });
    fakeServer(pool, { state: "active" });
    consoleClient(pooler, "alice", { pool, database: "shop", state: "waiting", waitingSince: clock.t - 2500 });
    const messages = await converse(pooler, "root", encodeQuery({ query: "show pools;" }));
    const { columns, rows } = tableOf(messages);
    expect(columns).toEqual([
      ["database", 25],
      ["user", 25],
      ["cl_active", 23],
      ["cl_waiting", 23],
      ["cl_active_cancel_req", 23],
      ["cl_waiting_cancel_req", 23],
      ["sv_active", 23],
      ["sv_active_cancel", 23],
      ["sv_being_canceled", 23],
      ["sv_idle", 23],
      ["sv_used", 23],
      ["sv_tested", 23],
      ["sv_login", 23],
      ["maxwait", 23],
      ["maxwait_us", 23],
      ["pool_mode", 25],
    ]);
    expect(rows).toEqual([
      ["shop", "alice", "0", "1", "0", "0", "1", "0", "0", "1", "0", "0", "0", "2", "500000", "session"],
    ]);
    expect(messages.at(-2)).toEqual({ type: "CommandComplete", tag: "SHOW" });
    expect(messages.at(-1)?.type).toBe("ReadyForQuery");
  });

  test("SHOW STATS, STATS_TOTALS and STATS_AVERAGES are numeric, per database, in microseconds", async () => {
    const { pooler, clock } = quietPooler();
    const pool = pooler.poolFor("shop", "alice")!;
    Object.assign(pool.stats, { transactions: 10, queries: 40, transactionMicros: 20_000, waitMicros: 5_000 });
    // The averages window starts at the first look.
    pgbouncerView(pooler, "stats_averages");
    clock.t += 10_000;
    Object.assign(pool.stats, { transactions: 110, queries: 440, transactionMicros: 220_000, waitMicros: 5_000 });
    const totals = tableOf(await converse(pooler, "watcher", encodeQuery({ query: "SHOW STATS_TOTALS" })));
    expect(totals.columns).toEqual([
      ["database", 25],
      ["xact_count", 1700],
      ["query_count", 1700],
      ["bytes_received", 1700],
      ["bytes_sent", 1700],
      ["xact_time", 1700],
      ["query_time", 1700],
      ["wait_time", 1700],
    ]);
    expect(totals.rows).toEqual([["shop", "110", "440", "0", "0", "220000", "0", "5000"]]);
    const stats = tableOf(await converse(pooler, "watcher", encodeQuery({ query: "SHOW STATS" })));
    expect(stats.columns.map(([n]) => n)).toEqual([
      "database",
      "total_xact_count",
      "total_query_count",
      "total_received",
      "total_sent",
      "total_xact_time",
      "total_query_time",
      "total_wait_time",
      "avg_xact_count",
      "avg_query_count",
      "avg_recv",
      "avg_sent",
      "avg_xact_time",
      "avg_query_time",
      "avg_wait_time",
    ]);
    clock.t += 60_000; // a stats period later the window moves: 100 transactions over the last 70 s
    const avg = tableOf(await converse(pooler, "watcher", encodeQuery({ query: "SHOW STATS_AVERAGES" })));
    expect(avg.rows[0]?.slice(0, 3)).toEqual(["shop", "1", "5"]); // floor(100 / 70), floor(400 / 70)
  });

  test("SHOW CLIENTS and SERVERS list sockets with PgBouncer's columns; ptr is the id KILL_CLIENT takes", async () => {
    const { pooler } = quietPooler();
    const pool = pooler.poolFor("shop", "alice")!;
    const server = fakeServer(pool, { state: "active" });
    const app = consoleClient(pooler, "alice", { pool, database: "shop", state: "active", server });
    (server as { client: ClientSession | null }).client = app.client;
    const clients = tableOf(await converse(pooler, "root", encodeQuery({ query: "SHOW CLIENTS" })));
    expect(clients.columns.map(([n]) => n)).toEqual([
      "type",
      "user",
      "database",
      "state",
      "addr",
      "port",
      "local_addr",
      "local_port",
      "connect_time",
      "request_time",
      "wait",
      "wait_us",
      "close_needed",
      "ptr",
      "link",
      "remote_pid",
      "tls",
      "application_name",
    ]);
    const row = clients.rows.find((r) => r[13] === String(app.client.id));
    expect(row?.slice(0, 6)).toEqual(["C", "alice", "shop", "active", "127.0.0.1", "50000"]);
    expect(row?.[14]).toBe(String(server.id));
    expect(row?.[8]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    const servers = tableOf(await converse(pooler, "root", encodeQuery({ query: "SHOW SERVERS" })));
    expect(servers.rows).toHaveLength(1);
    expect(servers.rows[0]?.slice(0, 6)).toEqual(["S", "alice", "shop", "active", "10.1.1.1", "5432"]);
    expect(servers.rows[0]?.[14]).toBe(String(app.client.id));
    expect(servers.rows[0]?.[15]).toBe("777");
  });

  test("SHOW PINS, pgmux's own, lists each pinned client's reasons with their counts", async () => {
    const { pooler } = quietPooler({ poolMode: "transaction" });
    const pool = pooler.poolFor("shop", "alice")!;
    const listener = new SessionState();
    listener.apply([
      { kind: "pin", reason: "listen", key: "jobs" },
      { kind: "pin", reason: "listen", key: "mail" },
      { kind: "pin", reason: "advisory_lock" },
    ]);
    const setter = new SessionState();
    setter.apply([{ kind: "set", name: "search_path", sql: "SET search_path = app" }]);
    const pinned = consoleClient(pooler, "alice", { pool, database: "shop", state: "active", session: listener });
    consoleClient(pooler, "alice", { pool, database: "shop", state: "idle", session: setter });
    const pins = tableOf(await converse(pooler, "watcher", encodeQuery({ query: "SHOW PINS" })));
    expect(pins.columns).toEqual([
      ["id", 23],
      ["user", 25],
      ["database", 25],
      ["reason", 25],
      ["count", 23],
    ]);
    expect(pins.rows).toEqual([
      [String(pinned.client.id), "alice", "shop", "advisory_lock", "1"],
      [String(pinned.client.id), "alice", "shop", "listen", "2"],
    ]);
  });

  test("every SHOW view answers, and SHOW VERSION names PgBouncer 1.18 first", async () => {
    const { pooler } = quietPooler();
    for (const view of SHOW_VIEWS) {
      const messages = await converse(pooler, "watcher", encodeQuery({ query: `SHOW ${view}` }));
      expect(errorOf(messages), view).toBeUndefined();
      expect(
        messages.some((m) => m.type === "RowDescription"),
        view,
      ).toBe(true);
    }
    const version = tableOf(await converse(pooler, "root", encodeQuery({ query: "SHOW VERSION" })));
    expect(version.columns).toEqual([["version", 25]]);
    expect(version.rows[0]?.[0]).toMatch(/^PgBouncer 1\.18\.0 \(pgmux \d+\.\d+\.\d+\)$/);
  });

  test("SHOW CONFIG from a configuration masks secrets and gives defaults", async () => {
    const { pooler } = quietPooler();
    const config = PgmuxConfigSchema.parse({
      pgmux: { auth_ldap_options: "binddn=x bindpasswd=hunter2", max_client_conn: "500" },
      databases: {},
      users: {},
      peers: {},
      auth: { root: "secret" },
    });
    configureAdminConsole(pooler, { config: () => config });
    const { rows } = tableOf(await converse(pooler, "root", encodeQuery({ query: "SHOW CONFIG" })));
    const byKey = new Map(rows.map((r) => [r[0], r]));
    expect(byKey.get("max_client_conn")).toEqual(["max_client_conn", "500", "100", "yes"]);
    expect(byKey.get("auth_ldap_options")?.[1]).toBe("********");
    expect(byKey.get("listen_port")?.[3]).toBe("no");
    expect(JSON.stringify(rows)).not.toContain("hunter2");
  });

  test("an unknown command is a 42601 naming it", async () => {
    const { pooler } = quietPooler();
    const messages = await converse(pooler, "root", encodeQuery({ query: "SHOW FROGS" }));
    expect(errorOf(messages)).toEqual({ code: "42601", message: "invalid command 'SHOW FROGS', use SHOW HELP;" });
    const other = await converse(pooler, "root", encodeQuery({ query: "select * from pg_class" }));
    expect(errorOf(other)?.code).toBe("42601");
    expect(errorOf(other)?.message).toContain("select * from pg_class");
    expect(other.at(-1)?.type).toBe("ReadyForQuery");
  });

  test("an empty query gets EmptyQueryResponse", async () => {
    const { pooler } = quietPooler();
    const messages = await converse(pooler, "root", encodeQuery({ query: " ; " }));
    expect(messages.map((m) => m.type)).toEqual(["EmptyQueryResponse", "ReadyForQuery"]);
  });

  test("a stats user may read but not act: PAUSE is 42501", async () => {
    const { pooler } = quietPooler();
    const messages = await converse(pooler, "watcher", encodeQuery({ query: "PAUSE" }));
    expect(errorOf(messages)?.code).toBe("42501");
    expect(messages.at(-1)?.type).toBe("ReadyForQuery");
  });

  test("the extended protocol is refused once with 08P01, and Sync brings ReadyForQuery", async () => {
    const { pooler } = quietPooler();
    const messages = await converse(
      pooler,
      "root",
      encodeParse({ statement: "", query: "SHOW POOLS", parameterTypes: [] }),
      encodeBind({ portal: "", statement: "", parameterFormats: [], parameters: [], resultFormats: [] }),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeSync(),
      encodeQuery({ query: "SHOW VERSION" }),
    );
    expect(messages.map((m) => m.type)).toEqual([
      "ErrorResponse",
      "ReadyForQuery",
      "RowDescription",
      "DataRow",
      "CommandComplete",
      "ReadyForQuery",
    ]);
    expect(errorOf(messages)).toEqual({ code: "08P01", message: "admin console supports simple query only" });
  });

  test("actions the engine cannot do are 0A000, saying what is missing", async () => {
    const { pooler } = quietPooler();
    // An engine without pause, resume and reconnect (as before they were wired).
    Object.assign(pooler, { pause: undefined, resume: undefined, reconnect: undefined });
    for (const command of ["PAUSE", "RESUME", "RECONNECT", "RELOAD"]) {
      const messages = await converse(pooler, "root", encodeQuery({ query: command }));
      expect(errorOf(messages)?.code, command).toBe("0A000");
    }
    await expect(engineControl(pooler).pause()).rejects.toBeInstanceOf(ControlUnavailableError);
  });

  test("actions go through the registered control, which may say the state is wrong (55000)", async () => {
    const { pooler } = quietPooler();
    const calls: string[] = [];
    let paused = false;
    const control: PoolerControl = {
      ...engineControl(pooler),
      async pause() {
        calls.push("pause");
        paused = true;
      },
      async resume() {
        if (!paused) throw new (await import("./admin-console.js")).ControlStateError("pgmux is not paused");
        calls.push("resume");
        paused = false;
      },
      isPaused: () => paused,
    };
    configureAdminConsole(pooler, { control });
    expect(adminControl(pooler)).toBe(control);
    const paused1 = await converse(pooler, "root", encodeQuery({ query: "PAUSE" }));
    expect(paused1.map((m) => m.type)).toEqual(["CommandComplete", "ReadyForQuery"]);
    const state = tableOf(await converse(pooler, "root", encodeQuery({ query: "SHOW STATE" })));
    expect(state.rows).toContainEqual(["paused", "yes"]);
    await converse(pooler, "root", encodeQuery({ query: "RESUME" }));
    const again = await converse(pooler, "root", encodeQuery({ query: "RESUME" }));
    expect(errorOf(again)).toEqual({ code: "55000", message: "pgmux is not paused" });
    expect(calls).toEqual(["pause", "resume"]);
  });

  test("KILL_CLIENT sends the client a FATAL 57P01 and closes it; an unknown id is 42704", async () => {
    const { pooler } = quietPooler();
    const victim = consoleClient(pooler, "alice", { database: "shop", state: "idle" });
    const messages = await converse(pooler, "root", encodeQuery({ query: `KILL_CLIENT ${victim.client.id}` }));
    expect(messages.map((m) => m.type)).toEqual(["CommandComplete", "ReadyForQuery"]);
    const [fatal] = decodeAll(victim.written);
    expect(fatal?.type === "ErrorResponse" && fatal.fields.get("C")).toBe("57P01");
    expect(victim.closedWith()).toBe("killed by an administrator");
    expect(errorOf(await converse(pooler, "root", encodeQuery({ query: "KILL_CLIENT 999999" })))?.code).toBe("42704");
    expect(errorOf(await converse(pooler, "root", encodeQuery({ query: "KILL_CLIENT abc" })))?.code).toBe("22023");
  });

  test("Terminate closes the console session", () => {
    const { pooler } = quietPooler();
    const c = consoleClient(pooler, "root");
    AdminConsole.open(c.client)!.onData(encodeTerminate());
    expect(c.closedWith()).toBe("client sent Terminate");
  });
});
