import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, freePort, runCommand, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { PgmuxProcess } from "../support/pgmux-process.js";

/** The value of every sample of `name` (any labels) in Prometheus text, added up. */
function metricSum(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m !== null && m[1] === name && (m[2] ?? "").includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

describe("workers: 2", () => {
  let server: TestPostgres;
  let dir: string;
  let database: string;
  let port: number;
  let pgmux: PgmuxProcess | undefined;

  beforeAll(async () => {
    server = await testPostgres();
    database = `workers_${process.pid}`;
    await server.createDatabase(database);
    const init = await runCommand(
      join(findPgBinDir(), "pgbench"),
      ["-i", "-s", "1", "-q", "-h", server.host, "-p", String(server.port), "-U", server.user, database],
      { timeoutMs: 60_000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.stderr}`);
    dir = mkdtempSync(join(tmpdir(), "pgmux-workers-"));
    writeFileSync(join(dir, "userlist.txt"), `"${server.user}" "${server.password}"\n`);
    port = await freePort();
    const adminPort = await freePort();
    writeFileSync(
      join(dir, "pgmux.yaml"),
      [
        "pgmux:",
        "  listen_addr: 127.0.0.1",
        `  listen_port: ${port}`,
        `  unix_socket_dir: ""`,
        "  auth_type: scram-sha-256",
        "  auth_file: userlist.txt",
        "  pool_mode: transaction",
        "  default_pool_size: 20",
        `  admin_listen_port: ${adminPort}`,
        "  admin_api_token: workers-token",
        "  workers: 2",
        "databases:",
        `  app: { host: ${server.host}, port: ${server.port}, dbname: ${database} }`,
        "",
      ].join("\n"),
    );
  });

  afterAll(async () => {
    await pgmux?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test("pgbench through two workers on one port; the aggregated metrics add up; cancels reach the right query", async () => {
    pgmux = await PgmuxProcess.start({ args: [join(dir, "pgmux.yaml")], startTimeoutMs: 30_000 });
    const admin = pgmux.adminUrl;
    expect(pgmux.find("pgmux started")).toMatchObject({ workers: 2, listen: [`127.0.0.1:${port}`] });
    expect(pgmux.count("pgmux worker started")).toBe(2);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);

    const bench = await runCommand(
      join(findPgBinDir(), "pgbench"),
      [
        ...["-n", "-S", "-c", "20", "-j", "2", "-T", "5"],
        ...["-h", "127.0.0.1", "-p", String(port), "-U", server.user, "app"],
      ],
      { timeoutMs: 30_000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    const output = `${bench.stdout}\n${bench.stderr}`;
    expect(bench.code, output).toBe(0);
    expect(output).toMatch(/number of failed transactions: 0 \(/);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(output)?.[1]);
    expect(processed).toBeGreaterThan(0);

    // Both workers served: each has its own pool, holding its half of default_pool_size.
    const pools = (
      (await (await fetch(`${admin}/v1/pools`)).json()) as {
        pools: { worker: number; size: number; totals: { transactions: number } }[];
      }
    ).pools;
    expect(pools.map((p) => p.worker).sort()).toEqual([0, 1]);
    expect(pools.map((p) => p.size)).toEqual([10, 10]);
    const perWorker = pools.map((p) => p.totals.transactions);
    expect(perWorker.every((n) => n > 0)).toBe(true);

    // /metrics adds the workers up: transactions equal the sum of the workers' own counts, and at least
    // what pgbench counted; the pool size is the configured one again.
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    const transactions = metricSum(metrics, "pgmux_transactions_total", 'database="app"');
    expect(transactions).toBe(perWorker[0]! + perWorker[1]!);
    expect(transactions).toBeGreaterThanOrEqual(processed);
    expect(metricSum(metrics, "pgmux_pool_size", 'database="app"')).toBe(20);
    expect(metricSum(metrics, "pgmux_clients_accepted_total")).toBeGreaterThanOrEqual(20);
    expect(metricSum(metrics, "pgmux_ready")).toBe(1);
    expect(metrics).toMatch(/process_resident_memory_bytes\{worker="0"\}/);
    expect(metrics).toMatch(/process_resident_memory_bytes\{worker="1"\}/);

    // Eight sleeping queries on eight connections, spread over the workers by the kernel (10 servers each:
    // all eight fit on one worker); each cancel
    // request arrives on a new connection, at whichever worker the kernel picks.
    const clients = Array.from({ length: 8 }, () =>
      postgres({
        host: "127.0.0.1",
        port,
        user: server.user,
        password: server.password,
        database: "app",
        max: 1,
        onnotice: () => {},
      }),
    );
    const queries = clients.map((sql, i) => sql`select pg_sleep(30), ${i}::int as i`.execute());
    const outcomes = queries.map((q) =>
      q.then(
        () => "finished",
        (e: { code?: string }) => e.code ?? "error",
      ),
    );
    const sleeping = async () =>
      Number(
        await server.psql(
          `select count(*) from pg_stat_activity where datname = '${database}' and query like 'select pg_sleep(30)%' and state = 'active'`,
        ),
      );
    await waitUntil("eight sleeping queries", async () => (await sleeping()) === 8, { timeoutMs: 10_000 });
    // Cancel the odd ones: exactly those end, the even ones sleep on.
    for (let i = 1; i < 8; i += 2) queries[i]!.cancel();
    await waitUntil("four sleeping queries", async () => (await sleeping()) === 4, { timeoutMs: 10_000 });
    for (let i = 1; i < 8; i += 2) expect(await outcomes[i]).toBe("57014");
    expect(await sleeping()).toBe(4);
    for (let i = 0; i < 8; i += 2) queries[i]!.cancel();
    for (let i = 0; i < 8; i += 2) expect(await outcomes[i]).toBe("57014");
    await Promise.all(clients.map((sql) => sql.end({ timeout: 1 })));

    const termAt = Date.now();
    pgmux.signal("SIGTERM");
    const exit = await pgmux.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - termAt).toBeLessThan(10_000);
    console.log(
      `workers: 2 — pgbench ${processed} transactions, 0 failed; per worker ${perWorker.join(" + ")} = ${transactions} in the merged /metrics; 8 cancels each stopped its own query`,
    );
  }, 90_000);
});
