import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, freePort, runCommand, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { PgmuxProcess } from "../support/pgmux-process.js";

interface PoolView {
  name: string;
  mode: string;
  size: number;
  servers: Record<string, number>;
}

async function pools(admin: string): Promise<PoolView[]> {
  const r = await fetch(`${admin}/v1/pools`);
  return ((await r.json()) as { pools: PoolView[] }).pools;
}

function config(o: {
  port: number;
  adminPort: number;
  server: TestPostgres;
  databases: Record<string, string>;
  poolSize: number | string;
  poolMode?: string;
  watch?: boolean;
}): string {
  return [
    "pgmux:",
    "  listen_addr: 127.0.0.1",
    `  listen_port: ${o.port}`,
    `  unix_socket_dir: ""`,
    "  auth_type: scram-sha-256",
    "  auth_file: userlist.txt",
    `  pool_mode: ${o.poolMode ?? "transaction"}`,
    `  default_pool_size: ${o.poolSize}`,
    `  admin_listen_port: ${o.adminPort}`,
    "  admin_api_token: reload-test-token",
    "  server_idle_timeout: 600",
    ...(o.watch === true ? ["  watch_config: true"] : []),
    "databases:",
    ...Object.entries(o.databases).map(
      ([name, dbname]) => `  ${name}: { host: ${o.server.host}, port: ${o.server.port}, dbname: ${dbname} }`,
    ),
    "",
  ].join("\n");
}

describe("hot reload", () => {
  let server: TestPostgres;
  let dir: string;
  let database: string;
  let port: number;
  let adminPort: number;
  let pgmux: PgmuxProcess | undefined;
  /** Connections of PostgreSQL itself, to count pgmux's servers from the server's side. */
  let direct: pg.Client;

  beforeAll(async () => {
    server = await testPostgres();
    database = `reload_${process.pid}`;
    await server.createDatabase(database);
    const init = await runCommand(
      join(findPgBinDir(), "pgbench"),
      ["-i", "-s", "1", "-q", "-h", server.host, "-p", String(server.port), "-U", server.user, database],
      { timeoutMs: 60_000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.stderr}`);
    dir = mkdtempSync(join(tmpdir(), "pgmux-reload-"));
    writeFileSync(join(dir, "userlist.txt"), `"${server.user}" "${server.password}"\n`);
    port = await freePort();
    adminPort = await freePort();
    direct = new pg.Client(server.params({ database: "postgres" }));
    await direct.connect();
  });

  afterAll(async () => {
    await pgmux?.kill();
    await direct?.end().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  async function serversOnPostgres(): Promise<number> {
    const r = await direct.query(
      "select count(*)::int as n from pg_stat_activity where datname = $1 and backend_type = 'client backend'",
      [database],
    );
    return r.rows[0].n as number;
  }

  test("under pgbench, pool size 5 → 20 → 5 takes effect with no failed transaction; an invalid file changes nothing", async () => {
    const file = join(dir, "pgmux.yaml");
    const write = (poolSize: number | string) =>
      writeFileSync(file, config({ port, adminPort, server, databases: { app: database }, poolSize }));
    write(5);
    pgmux = await PgmuxProcess.start({ args: [file] });
    const admin = pgmux.adminUrl;

    let sampling = true;
    const samples: { at: number; n: number }[] = [];
    const sampler = (async () => {
      while (sampling) {
        samples.push({ at: Date.now(), n: await serversOnPostgres() });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const maxBetween = (from: number, to: number) =>
      Math.max(0, ...samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.n));

    const pgbench = runCommand(
      join(findPgBinDir(), "pgbench"),
      [
        ...["-n", "-S", "-c", "30", "-j", "2", "-T", "24"],
        ...["-h", "127.0.0.1", "-p", String(port), "-U", server.user, "app"],
      ],
      { timeoutMs: 60_000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    const phase1 = Date.now();
    await waitUntil("5 servers in use", async () => (await serversOnPostgres()) >= 5, { timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 2000));

    // 5 → 20 by SIGHUP: more servers open for the clients that wait.
    const phase2 = Date.now();
    write(20);
    pgmux.signal("SIGHUP");
    await waitUntil("more than 5 servers after the reload to 20", async () => (await serversOnPostgres()) > 5, {
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));

    // An invalid file: rejected, logged with file:line: key, and the size stays 20.
    const phase3 = Date.now();
    write("twenty");
    const rejected = await fetch(`${admin}/v1/reload`, {
      method: "POST",
      headers: { authorization: "Bearer reload-test-token" },
    });
    const rejectedBody = (await rejected.json()) as { error: { message: string } };
    expect(rejected.status).toBe(409);
    expect(rejectedBody.error.message).toContain("pgmux.yaml:8: default_pool_size: expected a whole number");
    expect((await pools(admin))[0]).toMatchObject({ size: 20, mode: "transaction" });
    const rejectedLog = await pgmux.waitForLog("configuration rejected; the one in force stays");
    expect(JSON.stringify(rejectedLog)).toContain("pgmux.yaml:8: default_pool_size");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const phase3End = Date.now();

    // 20 → 5 by the admin API: surplus servers close as they come back.
    write(5);
    const shrunk = await fetch(`${admin}/v1/reload`, {
      method: "POST",
      headers: { authorization: "Bearer reload-test-token" },
    });
    expect(shrunk.status).toBe(200);
    const phase4 = Date.now();
    await waitUntil("back to at most 5 servers", async () => (await serversOnPostgres()) <= 5, {
      timeoutMs: 10_000,
    });
    const shrinkMs = Date.now() - phase4;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const phase5 = Date.now();

    const bench = await pgbench;
    sampling = false;
    await sampler;
    const output = `${bench.stdout}\n${bench.stderr}`;
    expect(bench.code, output).toBe(0);
    expect(output).toMatch(/number of failed transactions: 0 \(/);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(output)?.[1]);
    expect(processed).toBeGreaterThan(0);
    expect(output).not.toContain("aborted");

    const before = maxBetween(phase1, phase2);
    const grown = maxBetween(phase2, phase3);
    const duringInvalid = maxBetween(phase3, phase3End);
    const after = maxBetween(phase5 - 1500, phase5);
    expect(before).toBeLessThanOrEqual(5);
    expect(grown).toBeGreaterThan(5);
    expect(grown).toBeLessThanOrEqual(20);
    expect(duringInvalid).toBeGreaterThan(5);
    expect(after).toBeLessThanOrEqual(5);
    expect(pgmux.count("configuration reloaded")).toBe(2);
    console.log(
      `reload under pgbench (30 clients, -S, 24 s): servers max ${before} at size 5, ${grown} after reload to 20, ${duringInvalid} while the invalid file was rejected, ${after} after reload to 5 (reached ≤5 in ${shrinkMs} ms); ${processed} transactions, 0 failed`,
    );
  }, 90_000);

  test("a removed database drains (its client is closed at its transaction's end) while the others' stay", async () => {
    const file = join(dir, "pgmux.yaml");
    const two = { app: database, other: database };
    writeFileSync(file, config({ port, adminPort, server, databases: two, poolSize: 5 }));
    pgmux!.signal("SIGHUP");
    await waitUntil("the reload with two databases", () => pgmux!.count("configuration reloaded") >= 3, {
      timeoutMs: 5000,
    });
    const connect = async (db: string) => {
      const c = new pg.Client({ host: "127.0.0.1", port, user: server.user, password: server.password, database: db });
      c.on("error", () => {});
      await c.connect();
      return c;
    };
    const stays = await connect("app");
    const inTransaction = await connect("other");
    const idle = await connect("other");
    await stays.query("select 1");
    await idle.query("select 1");
    await inTransaction.query("begin");
    await inTransaction.query("select 1");

    writeFileSync(file, config({ port, adminPort, server, databases: { app: database }, poolSize: 5 }));
    pgmux!.signal("SIGHUP");
    await waitUntil("the reload without other", () => pgmux!.count("configuration reloaded") >= 4, { timeoutMs: 5000 });
    // The idle client of the removed database is let go at once; the one inside a transaction finishes it.
    const idleError = await idle.query("select 1").then(
      () => "none",
      (e: Error & { code?: string }) => e.code ?? e.message,
    );
    expect([
      "57P01",
      "Connection terminated unexpectedly",
      "Client has encountered a connection error and is not queryable",
    ]).toContain(idleError);
    expect((await inTransaction.query("select 2 as n")).rows[0].n).toBe(2);
    await inTransaction.query("commit");
    const after = await inTransaction.query("select 3").then(
      () => "none",
      (e: Error & { code?: string }) => e.code ?? e.message,
    );
    expect(after).not.toBe("none");
    // The remaining database's client never noticed.
    expect((await stays.query("select 4 as n")).rows[0].n).toBe(4);
    const unknown = await connect("other").then(
      (c) => c.end().then(() => "connected"),
      (e: Error & { code?: string }) => e.code,
    );
    expect(unknown).toBe("3D000");
    await stays.end();
    await inTransaction.end().catch(() => {});
    await idle.end().catch(() => {});
  });

  test("watch_config: a ConfigMap-style ..data symlink swap is seen and applied", async () => {
    await pgmux?.kill();
    const cm = join(dir, "configmap");
    mkdirSync(join(cm, "..v1"), { recursive: true });
    writeFileSync(join(cm, "..v1", "userlist.txt"), `"${server.user}" "${server.password}"\n`);
    writeFileSync(
      join(cm, "..v1", "pgmux.yaml"),
      config({ port, adminPort, server, databases: { app: database }, poolSize: 3, watch: true }),
    );
    symlinkSync("..v1", join(cm, "..data"));
    symlinkSync("..data/pgmux.yaml", join(cm, "pgmux.yaml"));
    symlinkSync("..data/userlist.txt", join(cm, "userlist.txt"));
    pgmux = await PgmuxProcess.start({ args: [join(cm, "pgmux.yaml")] });
    const c = new pg.Client({ host: "127.0.0.1", port, user: server.user, password: server.password, database: "app" });
    await c.connect();
    await c.query("select 1");
    expect((await pools(pgmux.adminUrl))[0]).toMatchObject({ size: 3, mode: "transaction" });

    // What the kubelet does: a new timestamped directory, a new symlink, renamed over ..data.
    mkdirSync(join(cm, "..v2"));
    writeFileSync(join(cm, "..v2", "userlist.txt"), `"${server.user}" "${server.password}"\n`);
    writeFileSync(
      join(cm, "..v2", "pgmux.yaml"),
      config({ port, adminPort, server, databases: { app: database }, poolSize: 9, poolMode: "session", watch: true }),
    );
    symlinkSync("..v2", join(cm, "..data_tmp"));
    renameSync(join(cm, "..data_tmp"), join(cm, "..data"));
    await pgmux.waitForLog("configuration reloaded", 10_000, (l) => l.trigger === "configuration file changed");
    expect((await pools(pgmux.adminUrl))[0]).toMatchObject({ size: 9, mode: "session" });
    // The client, in the middle of nothing, was not disconnected.
    expect((await c.query("select 5 as n")).rows[0].n).toBe(5);
    await c.end();
  });
});
