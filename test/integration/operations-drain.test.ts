import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, freePort, runCommand, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { PgmuxProcess } from "../support/pgmux-process.js";

const DELAY_SECONDS = 1;
const TIMEOUT_SECONDS = 6;

async function status(url: string): Promise<number> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return -1;
  }
}

/**
 * SIGTERM to the pgmux binary while pgbench runs long transactions through it (transaction pooling):
 * nothing is cut in the middle, /readyz fails at once, /metrics answers throughout, and the process exits
 * by shutdown_delay + shutdown_timeout, cancelling the one transaction that would not end in time.
 */
describe("SIGTERM drains at transaction boundaries", () => {
  let server: TestPostgres;
  let dir: string;
  let database: string;
  let pgmux: PgmuxProcess | undefined;

  beforeAll(async () => {
    server = await testPostgres();
    database = `drain_${process.pid}`;
    await server.createDatabase(database);
    await server.psql("create table drain_log (client int, step int, at timestamptz default clock_timestamp())", {
      database,
    });
    dir = mkdtempSync(join(tmpdir(), "pgmux-drain-"));
    writeFileSync(join(dir, "userlist.txt"), `"${server.user}" "${server.password}"\n`);
    const port = await freePort();
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
        "  default_pool_size: 5",
        `  admin_listen_port: ${adminPort}`,
        `  shutdown_delay: ${DELAY_SECONDS}`,
        `  shutdown_timeout: ${TIMEOUT_SECONDS}`,
        "databases:",
        `  app: { host: ${server.host}, port: ${server.port}, dbname: ${database} }`,
        "",
      ].join("\n"),
    );
    // Each transaction writes step 1, sleeps, writes step 2: cut in the middle, it would leave pgbench with
    // an error in a command other than the first.
    writeFileSync(
      join(dir, "long.sql"),
      [
        "BEGIN;",
        "INSERT INTO drain_log (client, step) VALUES (:client_id, 1);",
        "SELECT pg_sleep(0.3);",
        "INSERT INTO drain_log (client, step) VALUES (:client_id, 2);",
        "COMMIT;",
        "",
      ].join("\n"),
    );
  });

  afterAll(async () => {
    await pgmux?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test("every transaction commits or never starts; exit within shutdown_timeout; /readyz false at once; /metrics answers", async () => {
    pgmux = await PgmuxProcess.start({ args: [join(dir, "pgmux.yaml")] });
    const admin = pgmux.adminUrl;
    const port = Number(/"listen":\["127\.0\.0\.1:(\d+)"/.exec(pgmux.output)?.[1]);
    expect(await status(`${admin}/readyz`)).toBe(200);

    const pgbench = runCommand(
      join(findPgBinDir(), "pgbench"),
      [
        ...["-n", "-f", join(dir, "long.sql"), "-c", "10", "-j", "2", "-T", "40"],
        ...["-h", "127.0.0.1", "-p", String(port), "-U", server.user, "app"],
      ],
      { timeoutMs: 60_000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    // A transaction that outlives shutdown_timeout: cancelled, and its client closed, at the timeout.
    const stubborn = new pg.Client({
      host: "127.0.0.1",
      port,
      user: server.user,
      password: server.password,
      database: "app",
    });
    stubborn.on("error", () => {});
    await stubborn.connect();
    await stubborn.query("BEGIN");
    const stubbornResult = stubborn.query("SELECT pg_sleep(60)").then(
      () => "finished",
      (err: Error & { code?: string }) => err.code ?? err.message,
    );

    await waitUntil(
      "pgbench to commit some transactions",
      async () => Number(await server.psql("select count(*) from drain_log where step = 2", { database })) >= 20,
      { timeoutMs: 20_000, intervalMs: 200 },
    );

    const termAt = Date.now();
    pgmux.signal("SIGTERM");
    // Not ready from the first moment: the first answer after the signal has been handled is a 503 (an
    // answer may beat the signal's delivery by a few milliseconds, so poll until the first 503).
    let readyzAfterTerm = await status(`${admin}/readyz`);
    while (readyzAfterTerm === 200 && Date.now() - termAt < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      readyzAfterTerm = await status(`${admin}/readyz`);
    }
    const readyzMs = Date.now() - termAt;

    // /metrics answers during the delay and the drain, until the process is gone.
    const metricsStatuses: number[] = [];
    let exited = false;
    const exit = pgmux.exited.then((e) => {
      exited = true;
      return e;
    });
    while (!exited && Date.now() - termAt < (DELAY_SECONDS + TIMEOUT_SECONDS) * 1000 - 500) {
      metricsStatuses.push(await status(`${admin}/metrics`));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const { code, at } = await exit;
    const bench = await pgbench;
    const benchOutput = `${bench.stdout}\n${bench.stderr}`;
    const exitSeconds = (at - termAt) / 1000;

    expect(readyzAfterTerm).toBe(503);
    expect(readyzMs).toBeLessThan(500);
    expect(metricsStatuses.length).toBeGreaterThan(5);
    expect(metricsStatuses.every((s) => s === 200)).toBe(true);
    expect(code).toBe(0);
    // The stubborn transaction holds pgmux until shutdown_timeout, then is cancelled.
    expect(exitSeconds).toBeGreaterThanOrEqual(TIMEOUT_SECONDS);
    expect(exitSeconds).toBeLessThan(DELAY_SECONDS + TIMEOUT_SECONDS + 4);
    expect(await stubbornResult).not.toBe("finished");

    // Every pgbench client that was stopped, was stopped at the start of a transaction (command 0, BEGIN).
    const aborted = [...benchOutput.matchAll(/client \d+ (?:script \d+ )?aborted in command (\d+)/g)].map((m) =>
      Number(m[1]),
    );
    expect(aborted.length, benchOutput).toBe(10);
    expect(
      aborted.every((c) => c === 0),
      benchOutput,
    ).toBe(true);
    // What pgbench counted as done is exactly what committed; nothing half-done exists anyway (atomicity),
    // and no transaction that had started was lost.
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(benchOutput)?.[1]);
    const [step1, step2] = (
      await server.psql("select count(*) filter (where step = 1), count(*) filter (where step = 2) from drain_log", {
        database,
      })
    )
      .split("|")
      .map(Number);
    expect(step1).toBe(step2);
    expect(step2).toBe(processed);
    // Transactions kept committing during shutdown_delay (pgmux served them while endpoints were updated).
    const duringDelay = Number(
      await server.psql(
        `select count(*) from drain_log where step = 2 and at > to_timestamp(${termAt / 1000}) + interval '0.3 seconds'`,
        { database },
      ),
    );
    expect(duringDelay).toBeGreaterThan(0);
    expect(pgmux.find("drain finished")).toMatchObject({ timedOut: true, cancelled: 1 });
    console.log(
      `drain: readyz 503 after ${readyzMs} ms; ${metricsStatuses.length} /metrics scrapes all 200; exit ${exitSeconds.toFixed(2)} s after SIGTERM (delay ${DELAY_SECONDS} s, timeout ${TIMEOUT_SECONDS} s); pgbench ${processed} committed, ${aborted.length} clients stopped at command 0; ${duringDelay} committed during the delay`,
    );
    await stubborn.end().catch(() => {});
  }, 90_000);
});
