import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BackendMessage, encodeQuery, encodeStartupMessage, ProtocolVersion } from "@pgmux/protocol";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PostgresCluster, RawPeer, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * How clients reach pgmux: the TCP and Unix-socket listeners, and what a client is told when pgmux will not
 * take it (unknown database, no user, too many clients) or speaks a newer protocol than pgmux.
 */

let pgServer: TestPostgres;

beforeAll(async () => {
  pgServer = await testPostgres();
});

describe("the Unix socket listener", () => {
  test("serves psql through .s.PGSQL.<port> in unix_socket_dir", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgmux-sock-"));
    const pooler = await startPooler({ postgres: pgServer, settings: { unixSocketDir: dir } });
    try {
      const socketPath = join(dir, `.s.PGSQL.${pooler.port}`);
      expect(pooler.pooler.addresses).toContainEqual({ path: socketPath });
      // unix_socket_mode (0777 by default) is applied to the socket file.
      expect(statSync(socketPath).mode & 0o777).toBe(0o777);
      const out = await runPsql(
        ["-h", dir, "-p", String(pooler.port), "-U", pgServer.user, "-d", pgServer.database],
        "select 'through the socket' as how, current_user as who, count(*) from pg_stat_activity where pid = pg_backend_pid()",
        pgServer.password,
      );
      expect(out).toBe(`through the socket|${pgServer.user}|1`);
    } finally {
      await stopWithin(pooler, 3000);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a client pgmux will not serve", () => {
  test("asking for a database that is not configured gets 3D000 naming it", async () => {
    const pooler = await startPooler({
      postgres: pgServer,
      settings: {
        fallbackDatabase: null,
        databases: new Map([
          [
            "known",
            {
              name: "known",
              host: pgServer.host,
              port: pgServer.port,
              dbname: pgServer.database,
              serverStartupParameters: new Map(),
            },
          ],
        ]),
      },
    });
    try {
      const error = await connectError(pooler.params({ database: "no_such_db" }));
      expect(error.code).toBe("3D000");
      expect(error.message).toContain('"no_such_db"');
      // The configured one still works.
      const ok = new pg.Client(pooler.params({ database: "known" }));
      await ok.connect();
      expect((await ok.query("select current_database() as db")).rows).toEqual([{ db: pgServer.database }]);
      await ok.end();
    } finally {
      await stopWithin(pooler, 3000);
    }
  });

  test("asking through the '*' fallback for a database PostgreSQL lacks fails at once with the server's reason", async () => {
    const pooler = await startPooler({ postgres: pgServer });
    try {
      const started = Date.now();
      const error = await connectError(pooler.params({ database: "not_in_postgres_either" }));
      // pgmux relays why the server refused the login (08001, the server's own words), without waiting
      // for query_wait_timeout (30 s here).
      expect(error.code).toBe("08001");
      expect(error.message).toMatch(/"not_in_postgres_either" does not exist/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await stopWithin(pooler, 3000);
    }
  });

  test("a startup packet without a user gets 28000 and is closed", async () => {
    const pooler = await startPooler({ postgres: pgServer });
    try {
      const peer = await RawPeer.connect(pooler.port);
      peer.send(
        encodeStartupMessage({ protocolVersion: ProtocolVersion.V3_0, parameters: [["database", "postgres"]] }),
      );
      const msg = await peer.next();
      expect(msg?.type).toBe("ErrorResponse");
      const fields = (msg as Extract<BackendMessage, { type: "ErrorResponse" }>).fields;
      expect(fields.get("C")).toBe("28000");
      expect(fields.get("V")).toBe("FATAL");
      expect(fields.get("M")).toMatch(/user/);
      await peer.closed();
    } finally {
      await stopWithin(pooler, 3000);
    }
  });

  test("the client over max_client_conn gets 53300, and a place freed is taken again", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { maxClientConn: 2 } });
    const held: pg.Client[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = new pg.Client(pooler.params());
        await c.connect();
        held.push(c);
      }
      const error = await connectError(pooler.params());
      expect(error.code).toBe("53300");
      expect(error.message).toMatch(/max_client_conn \(2\)/);
      await held.pop()!.end();
      await waitUntil("pgmux to count the client that left", () => pooler.pooler.clients.size === 1, {
        timeoutMs: 5000,
      });
      const again = new pg.Client(pooler.params());
      await again.connect();
      held.push(again);
      expect((await again.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all(held.map((c) => c.end().catch(() => {})));
      await stopWithin(pooler, 2000);
    }
  });

  test("a refused client's connection is closed on pgmux's side too, so stop() does not wait for it", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { maxClientConn: 0 } });
    const error = await connectError(pooler.params());
    expect(error.code).toBe("53300");
    // The refused client is gone; nothing of it may keep pgmux's listener open.
    expect(await stopWithin(pooler, 3000)).toBe(true);
  });
});

describe("stopping pgmux", () => {
  test("tells a connected client 57P01 and finishes without waiting for the client to leave", async () => {
    const pooler = await startPooler({ postgres: pgServer });
    const client = new pg.Client(pooler.params());
    const errors: (Error & { code?: string })[] = [];
    client.on("error", (e) => errors.push(e));
    await client.connect();
    try {
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      expect(await stopWithin(pooler, 3000)).toBe(true);
      await waitUntil("the client to hear of the shutdown", () => errors.length > 0, { timeoutMs: 3000 });
      expect(errors[0]?.code).toBe("57P01");
    } finally {
      await client.end().catch(() => {});
      await stopWithin(pooler, 1000);
    }
  });
});

describe("a client of a newer protocol", () => {
  let pooler: PoolerInstance;

  beforeAll(async () => {
    pooler = await startPooler({ postgres: pgServer });
  });

  afterAll(async () => {
    if (pooler) await stopWithin(pooler, 3000);
  });

  test("asking for protocol 3.2 gets NegotiateProtocolVersion 3.0 first, then logs in and queries", async () => {
    const peer = await RawPeer.connect(pooler.port);
    try {
      const seen = await peer.login({
        protocolVersion: ProtocolVersion.V3_2,
        user: pgServer.user,
        database: pgServer.database,
        password: pgServer.password,
      });
      expect(seen[0]).toEqual({
        type: "NegotiateProtocolVersion",
        newestProtocolVersion: ProtocolVersion.V3_0,
        unrecognizedOptions: [],
      });
      const key = seen.find((m) => m.type === "BackendKeyData");
      // Protocol 3.0 was agreed: the cancel key is the 4 bytes of 3.0.
      expect(key?.type === "BackendKeyData" && key.secretKey.length).toBe(4);
      expect(await peer.query("select 'ok'")).toEqual(["ok"]);
    } finally {
      peer.destroy();
    }
  });

  test("sending a _pq_. option gets it listed as unrecognized, then logs in and queries", async () => {
    const peer = await RawPeer.connect(pooler.port);
    try {
      const seen = await peer.login({
        parameters: [["_pq_.made_up_extension", "on"]],
        user: pgServer.user,
        database: pgServer.database,
        password: pgServer.password,
      });
      expect(seen[0]).toEqual({
        type: "NegotiateProtocolVersion",
        newestProtocolVersion: ProtocolVersion.V3_0,
        unrecognizedOptions: ["_pq_.made_up_extension"],
      });
      expect(await peer.query("select 'still fine'")).toEqual(["still fine"]);
    } finally {
      peer.destroy();
    }
  });
});

describe("clients that are odd but valid", () => {
  let pooler: PoolerInstance;

  beforeAll(async () => {
    pooler = await startPooler({ postgres: pgServer, settings: { authType: "trust" } });
  });

  afterAll(async () => {
    if (pooler) await stopWithin(pooler, 3000);
  });

  test("a client sending everything one byte at a time logs in and queries", async () => {
    const peer = await RawPeer.connect(pooler.port);
    try {
      const startup = encodeStartupMessage({
        protocolVersion: ProtocolVersion.V3_0,
        parameters: [
          ["user", pgServer.user],
          ["database", pgServer.database],
        ],
      });
      for (const byte of startup) peer.send(Buffer.from([byte]));
      const seen: string[] = [];
      for (let msg = await peer.next(); msg?.type !== "ReadyForQuery"; msg = await peer.next()) {
        if (msg === null) throw new Error(`closed during login after ${seen.join(", ")}`);
        seen.push(msg.type);
      }
      expect(seen[0]).toBe("AuthenticationOk");
      for (const byte of encodeQuery({ query: "select 'byte by byte'" })) peer.send(Buffer.from([byte]));
      const rows: string[] = [];
      for (let msg = await peer.next(); msg?.type !== "ReadyForQuery"; msg = await peer.next()) {
        if (msg === null) throw new Error("closed during the query");
        if (msg.type === "ErrorResponse") throw new Error(`${msg.fields.get("C")} ${msg.fields.get("M")}`);
        if (msg.type === "DataRow") rows.push(Buffer.from(msg.values[0]!).toString());
      }
      expect(rows).toEqual(["byte by byte"]);
    } finally {
      peer.destroy();
    }
  });

  test("a Query sent right behind the StartupMessage (trust) is answered as PostgreSQL answers it", async () => {
    const bytes = Buffer.concat([
      encodeStartupMessage({
        protocolVersion: ProtocolVersion.V3_0,
        parameters: [
          ["user", pgServer.user],
          ["database", pgServer.database],
        ],
      }),
      encodeQuery({ query: "select 'pipelined' as x" }),
    ]);
    // PostgreSQL itself, over its trust Unix socket, when the shared server is a local cluster.
    const socketDir = pgServer instanceof PostgresCluster ? pgServer.socketDir : null;
    if (socketDir !== null) {
      const direct = await exchange({ path: join(socketDir, `.s.PGSQL.${pgServer.port}`) }, bytes);
      expect(direct.rows).toEqual(["pipelined"]);
    }
    const through = await exchange({ host: "127.0.0.1", port: pooler.port }, bytes);
    expect(through.error).toBeNull();
    expect(through.rows).toEqual(["pipelined"]);
  });
});

/** Sends `bytes` at once and reads until the second ReadyForQuery (login, then the query) or an error. */
async function exchange(where: net.NetConnectOpts, bytes: Buffer): Promise<{ rows: string[]; error: string | null }> {
  const peer = await RawPeer.connectTo(where);
  try {
    peer.send(bytes);
    const rows: string[] = [];
    let ready = 0;
    while (ready < 2) {
      const msg = await peer.next();
      if (msg === null) return { rows, error: "closed" };
      if (msg.type === "ErrorResponse") return { rows, error: `${msg.fields.get("C")} ${msg.fields.get("M")}` };
      if (msg.type === "DataRow") rows.push(Buffer.from(msg.values[0]!).toString());
      if (msg.type === "ReadyForQuery") ready++;
    }
    return { rows, error: null };
  } finally {
    peer.destroy();
  }
}

// ---- helpers ------------------------------------------------------------------------------------------------

/** pooler.stop() bounded in time: true when it finished, false when it was still waiting after `ms`. */
async function stopWithin(pooler: PoolerInstance, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([pooler.stop().then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function connectError(params: pg.ClientConfig): Promise<Error & { code?: string }> {
  const client = new pg.Client(params);
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    return error as Error & { code?: string };
  }
  await client.end();
  throw new Error("the connection was expected to be refused, and was accepted");
}

function runPsql(args: readonly string[], sql: string, password: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  env.PGPASSWORD = password;
  env.PGCONNECT_TIMEOUT = "10";
  return new Promise((resolve, reject) => {
    execFile(
      "psql",
      ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", ...args, "-c", sql],
      { env, timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`psql failed: ${error.message}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}
