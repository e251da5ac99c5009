import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import module from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, test, vi } from "vitest";
import {
  ExternalPostgres,
  PostgresCluster,
  RecordingRelay,
  type TestPostgres,
  testPostgres,
  waitUntil,
} from "../support/index.js";

const external = Boolean(process.env.PG_TEST_URL);
// Present when vitest runs test/support/global-setup.ts for this project.
const provided = inject("pgmuxPostgres");

// Authentication request codes from the AuthenticationXXX messages ('R').
const AUTH_CLEARTEXT = 3;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;

/** Connects, runs `sql`, disconnects; the client's 'error' events are kept from crashing the worker. */
async function pgQuery(params: pg.ClientConfig, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client(params);
  client.on("error", () => {});
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The code of the first AuthenticationXXX message the server sent on the relay's first connection. */
function firstAuthRequest(relay: RecordingRelay): { code: number; body: Buffer } {
  const connection = relay.connections[0];
  if (!connection) throw new Error("nothing was relayed");
  const backend = Buffer.concat(connection.chunks.filter((c) => c.direction === "backend").map((c) => c.bytes));
  expect(String.fromCharCode(backend[0]!)).toBe("R");
  const length = backend.readInt32BE(1);
  return { code: backend.readInt32BE(5), body: backend.subarray(9, 1 + length) };
}

async function authRequestFor(server: TestPostgres, params: pg.ClientConfig): Promise<number> {
  const relay = await RecordingRelay.start({ host: server.host, port: server.port });
  try {
    const result = await pgQuery({ ...params, host: relay.host, port: relay.port }, "select current_user as who");
    expect(result.rows).toEqual([{ who: params.user }]);
    await relay.settled(1);
    return firstAuthRequest(relay).code;
  } finally {
    await relay.close();
  }
}

/** Role and database names unique to this run, so reruns against one PG_TEST_URL server do not collide. */
let names = 0;
function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${++names}`;
}

/** Alive and not a zombie (an orphan killed under a lazy init lingers as one). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return true;
  }
}

describe("the shared test server", () => {
  let server: TestPostgres;

  beforeAll(async () => {
    server = await testPostgres();
  });

  test("is the same handle for every caller in a file", async () => {
    expect(await testPostgres()).toBe(server);
  });

  test.runIf(provided !== undefined && !external)("is the cluster the vitest global setup started", () => {
    expect(server).toBeInstanceOf(PostgresCluster);
    expect((server as PostgresCluster).descriptor()).toEqual(provided);
  });

  test("answers pg over TCP after SCRAM-SHA-256 authentication", async () => {
    const role = unique("harness_scram");
    await server.createRole(role, "scram secret");
    const relay = await RecordingRelay.start({ host: server.host, port: server.port });
    try {
      const client = new pg.Client(
        server.params({ host: relay.host, port: relay.port, user: role, password: "scram secret" }),
      );
      client.on("error", () => {});
      await client.connect();
      try {
        expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
        const { rows } = await client.query("select version() as version");
        expect(rows[0].version).toMatch(/^PostgreSQL \d+/);
      } finally {
        await client.end();
      }
      await relay.settled(1);
      const request = firstAuthRequest(relay);
      expect(request.code).toBe(AUTH_SASL);
      expect(request.body.toString("latin1")).toContain("SCRAM-SHA-256\0");
    } finally {
      await relay.close();
    }
  });

  test("answers postgres.js over TCP with the superuser's SCRAM password", async () => {
    const sql = postgres(server.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
    try {
      const [row] = await sql`select 1 as one, version() as version`;
      expect(row?.one).toBe(1);
      expect(row?.version).toMatch(/^PostgreSQL \d+/);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  test("runs SQL through psql and returns its unaligned tuples-only output", async () => {
    expect(await server.psql("select 1 + 1")).toBe("2");
    expect(await server.psql("select 'a' as x, 2 as y union all select 'b', 3 order by 1")).toBe("a|2\nb|3");
    await expect(server.psql("select * from no_such_table")).rejects.toThrow(/no_such_table/);
  });

  test("creates databases that roles can connect to", async () => {
    const owner = unique("harness_owner");
    const database = unique("harness_db");
    await server.createRole(owner, "owner secret");
    await server.createDatabase(database, { owner });
    const params = server.params({ user: owner, password: "owner secret", database });
    const { rows } = await pgQuery(params, "select current_database() as db");
    expect(rows).toEqual([{ db: database }]);
    expect(server.urlFor({ database })).toMatch(new RegExp(`/${database}$`));
  });

  test("refuses a wrong password with SQLSTATE 28P01", async () => {
    await expect(pgQuery(server.params({ password: "not the password" }), "select 1")).rejects.toMatchObject({
      code: "28P01",
    });
  });

  test.skipIf(external)("authenticates md5 roles with md5 and plain roles with a cleartext password", async () => {
    const [md5, plain, scram] = [unique("harness_md5"), unique("harness_plain"), unique("harness_scram")];
    await server.createRole(md5, "md5 secret", { method: "md5" });
    await server.createRole(plain, "plain secret", { method: "plain" });
    await server.createRole(scram, "scram secret", { method: "scram" });
    expect(await server.psql(`select left(rolpassword, 3) from pg_authid where rolname = '${md5}'`)).toBe("md5");

    expect(await authRequestFor(server, server.params({ user: md5, password: "md5 secret" }))).toBe(AUTH_MD5);
    expect(await authRequestFor(server, server.params({ user: plain, password: "plain secret" }))).toBe(AUTH_CLEARTEXT);
    expect(await authRequestFor(server, server.params({ user: scram, password: "scram secret" }))).toBe(AUTH_SASL);
  });

  test("terminate() ends a backend by PID", async () => {
    const client = new pg.Client(server.params());
    const errors: Error[] = [];
    client.on("error", (error) => errors.push(error));
    await client.connect();
    try {
      const { rows } = await client.query("select pg_backend_pid() as pid");
      expect(await server.terminate(rows[0].pid)).toBe(true);
      await expect(client.query("select 1")).rejects.toThrow();
    } finally {
      await client.end().catch(() => {});
    }
  });
});

describe("a cluster of the test's own", () => {
  let cluster: PostgresCluster;

  beforeAll(async () => {
    cluster = await PostgresCluster.start();
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  test("listens on 127.0.0.1 with its socket, data and log in its own directory", () => {
    expect(cluster.host).toBe("127.0.0.1");
    expect(cluster.url).toBe(
      `postgres://postgres:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/postgres`,
    );
    expect(cluster.dataDir.startsWith(cluster.rootDir)).toBe(true);
    expect(existsSync(`${cluster.socketDir}/.s.PGSQL.${cluster.port}`)).toBe(true);
    expect(existsSync(cluster.logFile)).toBe(true);
    expect(cluster.isRunning()).toBe(true);
  });

  test("runs beside a second cluster on another port, each with its own data", async () => {
    const other = await PostgresCluster.start();
    try {
      expect(other.port).not.toBe(cluster.port);
      expect(other.rootDir).not.toBe(cluster.rootDir);
      await cluster.psql("create table only_in_first (id int)");
      const [first, second] = await Promise.all([
        pgQuery(
          cluster.params(),
          "select to_regclass('only_in_first') is not null as present, inet_server_port() as port",
        ),
        pgQuery(
          other.params(),
          "select to_regclass('only_in_first') is not null as present, inet_server_port() as port",
        ),
      ]);
      expect(first.rows).toEqual([{ present: true, port: cluster.port }]);
      expect(second.rows).toEqual([{ present: false, port: other.port }]);
    } finally {
      await other.destroy();
    }
  });

  test("restart() keeps committed data and serves again", async () => {
    await cluster.psql("create table kept (id int); insert into kept values (1), (2), (3)");
    const before = cluster.postmasterPid();
    await cluster.restart();
    expect(cluster.postmasterPid()).not.toBe(before);
    const { rows } = await pgQuery(cluster.params(), "select count(*)::int as n from kept");
    expect(rows).toEqual([{ n: 3 }]);
  });

  test("kill() drops connected clients and start() brings the server back", async () => {
    const client = new pg.Client(cluster.params());
    const errors: Error[] = [];
    client.on("error", (error) => errors.push(error));
    await client.connect();
    const before = cluster.postmasterPid()!;
    try {
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await cluster.kill();
      expect(cluster.isRunning()).toBe(false);
      expect(processAlive(before)).toBe(false);
      await expect(client.query("select 1")).rejects.toThrow();
      await expect(pgQuery({ ...cluster.params(), connectionTimeoutMillis: 2_000 }, "select 1")).rejects.toThrow();
    } finally {
      await client.end().catch(() => {});
    }

    await cluster.start();
    expect(cluster.postmasterPid()).not.toBe(before);
    expect((await pgQuery(cluster.params(), "select 1 as one")).rows).toEqual([{ one: 1 }]);
  });

  test("kill() refuses a cluster that is not running, and stop() is idempotent", async () => {
    await cluster.stop();
    await cluster.stop();
    await expect(cluster.kill()).rejects.toThrow(/not running/);
    await cluster.start();
    await cluster.start();
    expect(await cluster.psql("select 'up'")).toBe("up");
  });

  test("is reachable through PG_TEST_URL as an external server whose lifecycle is not ours", async () => {
    const handle = new ExternalPostgres(cluster.url);
    expect(handle.kind).toBe("external");
    expect(handle.params()).toEqual(cluster.params());
    expect(await handle.psql("select current_user")).toBe("postgres");
    for (const action of [handle.kill(), handle.stop(), handle.restart(), handle.start()]) {
      await expect(action).rejects.toThrow(/not supported on the external server from PG_TEST_URL/);
    }

    vi.stubEnv("PG_TEST_URL", cluster.url);
    vi.resetModules();
    try {
      const fresh = await import("../support/test-postgres.js");
      const shared = await fresh.testPostgres();
      expect(shared.kind).toBe("external");
      expect(shared.port).toBe(cluster.port);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });

  test("start() fails with the server log when PostgreSQL cannot start", async () => {
    await expect(PostgresCluster.start({ settings: { shared_buffers: "not a size" } })).rejects.toThrow(
      /did not start[\s\S]*server log[\s\S]*shared_buffers/,
    );
  });

  test("destroy() stops the server and removes its directory", async () => {
    const doomed = await PostgresCluster.start();
    const pid = doomed.postmasterPid()!;
    await doomed.destroy();
    expect(existsSync(doomed.rootDir)).toBe(false);
    expect(processAlive(pid)).toBe(false);
    await expect(doomed.start()).rejects.toThrow(/destroyed/);
  });

  test("destroy() is refused on a cluster attached from another process", async () => {
    const attached = PostgresCluster.attach(cluster.descriptor());
    expect(await attached.psql("select 'attached'")).toBe("attached");
    await expect(attached.destroy()).rejects.toThrow(/belongs to the process that started it/);
  });
});

// A child process runs the harness from its TypeScript source: Node strips the types, and a resolve hook maps
// the NodeNext ".js" specifiers to the ".ts" files beside them.
const canRunSourceInChild = typeof (module as { registerHooks?: unknown }).registerHooks === "function";
const clusterSource = fileURLToPath(new URL("../support/postgres-cluster.ts", import.meta.url));

const CHILD_SCRIPT = `
import { registerHooks } from "node:module";
registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (error) {
      if (specifier.startsWith(".") && specifier.endsWith(".js")) return next(specifier.slice(0, -3) + ".ts", context);
      throw error;
    }
  },
});
const { PostgresCluster } = await import(process.env.CLUSTER_MODULE);
const cluster = await PostgresCluster.start();
process.stdout.write(JSON.stringify({ pid: cluster.postmasterPid(), dir: cluster.rootDir }) + "\\n");
if (process.argv[1] === "throw") setTimeout(() => { throw new Error("deliberate crash"); }, 10);
else setInterval(() => {}, 1000);
`;

describe.skipIf(!canRunSourceInChild || !existsSync(clusterSource))("a process that started clusters", () => {
  async function runChild(mode: "throw" | "wait"): Promise<{
    child: ChildProcess;
    started: { pid: number; dir: string };
  }> {
    const child = spawn(
      process.execPath,
      ["--experimental-strip-types", "--no-warnings", "--input-type=module", "-e", CHILD_SCRIPT, mode],
      {
        env: { ...process.env, CLUSTER_MODULE: pathToFileURL(clusterSource).href },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    await waitUntil("the child to report its cluster", () => stdout.includes("\n") || child.exitCode !== null, {
      timeoutMs: 30_000,
      detail: () => stderr,
    });
    if (!stdout.includes("\n")) throw new Error(`the child exited before starting a cluster:\n${stderr}`);
    return { child, started: JSON.parse(stdout.split("\n")[0]!) };
  }

  async function expectGone(started: { pid: number; dir: string }): Promise<void> {
    await waitUntil(
      `postmaster ${started.pid} to be stopped and ${started.dir} removed`,
      () => !processAlive(started.pid) && !existsSync(started.dir),
      { timeoutMs: 20_000 },
    );
  }

  test("stops them when it dies of an uncaught error", async () => {
    const { child, started } = await runChild("throw");
    await waitUntil("the child to exit", () => child.exitCode !== null, { timeoutMs: 20_000 });
    expect(child.exitCode).toBe(1);
    await expectGone(started);
  });

  test("stops them when it gets SIGTERM", async () => {
    const { child, started } = await runChild("wait");
    child.kill("SIGTERM");
    await waitUntil("the child to exit", () => child.exitCode !== null || child.signalCode !== null, {
      timeoutMs: 20_000,
    });
    expect(child.signalCode).toBe("SIGTERM");
    await expectGone(started);
  });

  test("stops them through the reaper when it is SIGKILLed", async () => {
    const { child, started } = await runChild("wait");
    child.kill("SIGKILL");
    await expectGone(started);
  });
});
