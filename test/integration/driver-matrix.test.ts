import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCommand, type TestPostgres, testPostgres } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";
import { describeResult } from "../support/run-command.js";

/**
 * Issue 5's driver matrix: every driver we test with, each with its own habit of server-side prepared
 * statements (pg with `name:`, postgres.js by default, asyncpg's statement cache, psycopg 3 with
 * prepare_threshold=0, JDBC with prepareThreshold=1), as WORKERS connections of TRANSACTIONS transactions each.
 * Each transaction runs three prepared statements whose results are checked (test/drivers/* describe them),
 * and the rows they wrote are counted on the server afterwards.
 *
 * In transaction mode a driver prepares a statement once on its connection and then executes it by name on
 * whichever server pgmux lends: the probe statement reports the backend it ran on and whether that backend
 * holds it as a named prepared statement, so "every execution prepared" with "one connection's executions on
 * several backends" shows statements running on servers the driver never sent their Parse to. Even and odd
 * workers prepare two texts of the probe, and pg, psycopg and pgjdbc give the same statement names on every
 * connection: one name standing for different statements on different clients must never run the other's
 * text (with max_prepared_statements = 0, that is what happens: "probe variant: got 0, expected 1").
 */

/** The issue's figures by default; PGMUX_DRIVER_MATRIX_WORKERS / _TRANSACTIONS for longer runs on demand. */
const WORKERS = positiveInt("PGMUX_DRIVER_MATRIX_WORKERS", 50);
const TRANSACTIONS = positiveInt("PGMUX_DRIVER_MATRIX_TRANSACTIONS", 200);
/** Each driver's run stops itself after this and reports what it did. */
const RUN_TIMEOUT_SECONDS = positiveInt("PGMUX_DRIVER_MATRIX_TIMEOUT_SECONDS", 100);
const TRANSACTION_POOL_SIZE = 5;

const PYTHON = "/usr/bin/python3"; // Debian's, where python3-asyncpg and python3-psycopg are installed
const JDBC_JAR = "/usr/share/java/postgresql.jar";
const DRIVERS_DIR = fileURLToPath(new URL("../drivers/", import.meta.url));
const PROBE_MARKER = "matrix-probe-a";

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not ${raw}`);
  return n;
}

/** What every worker program prints as its one JSON line (and what the in-process drivers build). */
interface MatrixReport {
  readonly driver: string;
  readonly ok: boolean;
  /** The first few distinct error messages, each with the worker and transaction where it first happened. */
  readonly errors: string[];
  readonly errorCount: number;
  readonly workers: number;
  readonly transactions: number;
  readonly expectedTransactions: number;
  /** Executions of the probe statement, and how many of them ran as a named prepared statement. */
  readonly probeExecutions: number;
  readonly preparedExecutions: number;
  /** The most, and the fewest, backends one connection's probe ran on. */
  readonly distinctBackendPids: number;
  readonly minDistinctBackendPids: number;
  /** Backends the probe ran on over the whole run. */
  readonly backendPids: number;
  readonly elapsedMs: number;
}

type DriverName = "pg" | "postgres" | "asyncpg" | "psycopg" | "jdbc";
const DRIVERS: readonly DriverName[] = ["pg", "postgres", "asyncpg", "psycopg", "jdbc"];

interface RunSpec {
  readonly url: string;
  readonly table: string;
  readonly workers: number;
  readonly transactions: number;
  readonly timeoutSeconds: number;
}

/** Even and odd workers prepare two texts of the probe, under the same name where a driver's names repeat. */
const probeSql = (variant: number, p: (n: number) => string) =>
  `SELECT ${p(1)}::int + 1 AS next, ${variant} AS variant, pg_backend_pid() AS pid,` +
  ` EXISTS (SELECT FROM pg_prepared_statements WHERE position('${PROBE_MARKER}' in statement) > 0) AS prepared`;
const insertSql = (table: string, p: (n: number) => string) =>
  `INSERT INTO ${table} (worker, seq, backend) VALUES (${p(1)}, ${p(2)}, pg_backend_pid())`;
const tallySql = (table: string, p: (n: number) => string) =>
  `SELECT count(*)::int AS n, coalesce(sum(seq), 0)::int AS total, pg_backend_pid() AS pid FROM ${table}` +
  ` WHERE worker = ${p(1)}`;
const dollar = (n: number) => `$${n}`;

/** One connection of an in-process driver, as the shared worker loop drives it. */
interface MatrixSession {
  probe(value: number): Promise<{ next: number; variant: number; pid: number; prepared: boolean }>;
  insert(worker: number, seq: number): Promise<number>;
  tally(worker: number): Promise<{ n: number; total: number; pid: number }>;
  /** BEGIN; body; COMMIT (ROLLBACK when body throws). */
  transaction(body: (session: MatrixSession) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

class Mismatch extends Error {}

function check(what: string, actual: unknown, wanted: unknown): void {
  if (actual !== wanted) throw new Mismatch(`${what}: got ${String(actual)}, expected ${String(wanted)}`);
}

/**
 * The worker programs' loop, for pg and postgres.js: WORKERS sessions, each doing TRANSACTIONS transactions
 * (every fourth as autocommit statements), stopping at its first error; bounded by spec.timeoutSeconds.
 */
async function runInProcess(
  driver: DriverName,
  spec: RunSpec,
  open: (worker: number) => Promise<MatrixSession>,
): Promise<MatrixReport> {
  const errors: string[] = [];
  let errorCount = 0;
  let transactions = 0;
  let probeExecutions = 0;
  let preparedExecutions = 0;
  const pids = Array.from({ length: spec.workers }, () => new Set<number>());
  const messages = new Set<string>();
  // Every error counted; the first few distinct messages reported, each with where it first happened.
  const fail = (worker: number | "all", where: string, message: string) => {
    errorCount++;
    if (errors.length >= 5 || messages.has(message)) return;
    messages.add(message);
    errors.push(`worker ${worker}, ${where}: ${message}`);
  };
  const started = Date.now();
  const deadline = started + spec.timeoutSeconds * 1000;

  const work = async (w: number) => {
    let session: MatrixSession | undefined;
    let i = 0;
    let committedSum = 0;
    const probe = async (s: MatrixSession) => {
      const value = w * 100_000 + i;
      const row = await s.probe(value);
      check("probe sum", row.next, value + 1);
      check("probe variant", row.variant, w % 2);
      probeExecutions++;
      if (row.prepared) preparedExecutions++;
      pids[w]!.add(row.pid);
      return row.pid;
    };
    const insert = async (s: MatrixSession) => check("inserted rows", await s.insert(w, i), 1);
    const tally = async (s: MatrixSession) => {
      const row = await s.tally(w);
      check("row count", row.n, i + 1);
      check("seq sum", row.total, committedSum + i);
      return row.pid;
    };
    try {
      session = await open(w);
      for (i = 0; i < spec.transactions; i++) {
        if (Date.now() > deadline) throw new Mismatch(`out of time after ${i} of ${spec.transactions} transactions`);
        if (i % 4 === 3) {
          await probe(session);
          await insert(session);
          await tally(session);
        } else {
          await session.transaction(async (tx) => {
            const pid = await probe(tx);
            await insert(tx);
            check("backend within the transaction", await tally(tx), pid);
          });
        }
        committedSum += i;
        transactions++;
      }
    } catch (error) {
      const e = error as Error;
      fail(w, `transaction ${i}`, `${e.constructor.name}: ${e.message.split("\n", 1)[0]!.slice(0, 300)}`);
    } finally {
      await session?.close().catch(() => {});
    }
  };

  const all = Promise.all(Array.from({ length: spec.workers }, (_, w) => work(w)));
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<"stuck">((resolve) => {
    timer = setTimeout(() => resolve("stuck"), (spec.timeoutSeconds + 5) * 1000);
  });
  if ((await Promise.race([all, stuck])) === "stuck") {
    fail("all", "end", `workers still running after ${spec.timeoutSeconds + 5} s`);
  }
  clearTimeout(timer);
  const counts = pids.map((set) => set.size);
  return {
    driver,
    ok: errorCount === 0 && transactions === spec.workers * spec.transactions,
    errors,
    errorCount,
    workers: spec.workers,
    transactions,
    expectedTransactions: spec.workers * spec.transactions,
    probeExecutions,
    preparedExecutions,
    distinctBackendPids: Math.max(0, ...counts),
    minDistinctBackendPids: counts.length === 0 ? 0 : Math.min(...counts),
    backendPids: new Set(pids.flatMap((set) => [...set])).size,
    elapsedMs: Date.now() - started,
  };
}

/** node-postgres: named queries, which pg parses once per connection and then only binds by name. */
function runPg(spec: RunSpec): Promise<MatrixReport> {
  const texts = { insert: insertSql(spec.table, dollar), tally: tallySql(spec.table, dollar) };
  return runInProcess("pg", spec, async (w) => {
    const probeText = probeSql(w % 2, dollar);
    const client = new pg.Client({ connectionString: spec.url, connectionTimeoutMillis: 10_000 });
    client.on("error", () => {});
    await client.connect();
    const session: MatrixSession = {
      async probe(value) {
        const { rows } = await client.query({ name: "matrix-probe", text: probeText, values: [value] });
        return rows[0];
      },
      async insert(worker, seq) {
        const result = await client.query({ name: "matrix-insert", text: texts.insert, values: [worker, seq] });
        return result.rowCount ?? 0;
      },
      async tally(worker) {
        const { rows } = await client.query({ name: "matrix-tally", text: texts.tally, values: [worker] });
        return rows[0];
      },
      async transaction(body) {
        await client.query("BEGIN");
        try {
          await body(session);
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          throw error;
        }
        await client.query("COMMIT");
      },
      close: () => client.end(),
    };
    return session;
  });
}

/** postgres.js with its default prepare: true (named statements, one per query text, per connection). */
function runPostgresJs(spec: RunSpec): Promise<MatrixReport> {
  return runInProcess("postgres", spec, async (w) => {
    // connect_timeout runs until postgres.js's own first query (its array-type fetch) has its answer, and
    // when it fires then the rejection is unhandled inside postgres.js: generous, so a slow pool fails in our report.
    const sql = postgres(spec.url, { max: 1, onnotice: () => {}, connect_timeout: 60 });
    const over = (q: postgres.Sql | postgres.TransactionSql): MatrixSession => ({
      async probe(value) {
        // The marker is part of the text (as PROBE_MARKER in the others), not a parameter.
        const [row] = await q`SELECT ${value}::int + 1 AS next, ${q.unsafe(String(w % 2))} AS variant,
          pg_backend_pid() AS pid,
          EXISTS (SELECT FROM pg_prepared_statements WHERE position('matrix-probe-a' in statement) > 0)
          AS prepared`;
        return row as { next: number; variant: number; pid: number; prepared: boolean };
      },
      async insert(worker, seq) {
        const result = await q`INSERT INTO ${q(spec.table)} (worker, seq, backend)
          VALUES (${worker}, ${seq}, pg_backend_pid())`;
        return result.count;
      },
      async tally(worker) {
        const [row] = await q`SELECT count(*)::int AS n, coalesce(sum(seq), 0)::int AS total, pg_backend_pid() AS pid
          FROM ${q(spec.table)} WHERE worker = ${worker}`;
        return row as { n: number; total: number; pid: number };
      },
      async transaction(body) {
        await sql.begin((tx) => body(over(tx)));
      },
      close: () => sql.end({ timeout: 5 }),
    });
    // Connect now, as the other drivers do, so a failed login counts as this worker's error.
    await sql`SELECT 1`;
    return over(sql);
  });
}

/** A worker program under test/drivers/: its one JSON line, or an error naming how it ended. */
async function runProgram(driver: DriverName, file: string, args: readonly string[], spec: RunSpec) {
  const result = await runCommand(
    file,
    [...args, spec.url, spec.table, String(spec.workers), String(spec.transactions), String(spec.timeoutSeconds)],
    { timeoutMs: (spec.timeoutSeconds + 20) * 1000 },
  );
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  let report: MatrixReport;
  try {
    report = JSON.parse(line) as MatrixReport;
  } catch {
    throw new Error(
      `the ${driver} worker ${describeResult(result)} without a report\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-2000)}`,
    );
  }
  // The exit code must agree with the report: a program that says ok but fails (or the reverse) is broken.
  expect({ driver, exit: result.code }).toEqual({ driver, exit: report.ok ? 0 : 1 });
  return report;
}

let javaClassesDir: string | undefined;

async function runDriver(driver: DriverName, spec: RunSpec): Promise<MatrixReport> {
  switch (driver) {
    case "pg":
      return runPg(spec);
    case "postgres":
      return runPostgresJs(spec);
    case "asyncpg":
      return runProgram(driver, PYTHON, [join(DRIVERS_DIR, "asyncpg-worker.py")], spec);
    case "psycopg":
      return runProgram(driver, PYTHON, [join(DRIVERS_DIR, "psycopg-worker.py")], spec);
    case "jdbc":
      return runProgram(driver, "java", ["-cp", `${JDBC_JAR}:${await compileJdbcWorker()}`, "JdbcWorker"], spec);
  }
}

async function compileJdbcWorker(): Promise<string> {
  if (javaClassesDir !== undefined) return javaClassesDir;
  const dir = await mkdtemp(join(tmpdir(), "pgmux-jdbc-"));
  const result = await runCommand("javac", ["-d", dir, "-cp", JDBC_JAR, join(DRIVERS_DIR, "JdbcWorker.java")], {
    timeoutMs: 60_000,
  });
  if (result.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`javac ${describeResult(result)}\n${result.stderr}`);
  }
  javaClassesDir = dir;
  return dir;
}

/** Calls `sample` every few milliseconds until the returned stop function is called; returns the largest value. */
function sampleMax(sample: () => number): () => number {
  let max = sample();
  const timer = setInterval(() => {
    max = Math.max(max, sample());
  }, 5);
  return () => {
    clearInterval(timer);
    return Math.max(max, sample());
  };
}

/**
 * Stops a pgmux instance, failing after `ms` rather than hanging the file until the hook timeout if
 * pooler.stop() does not finish.
 */
async function stopWithin(instance: PoolerInstance | undefined, ms = 10_000): Promise<void> {
  if (instance === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pooler.stop() did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([instance.stop(), late]);
  } finally {
    clearTimeout(timer);
  }
}

afterAll(async () => {
  if (javaClassesDir !== undefined) await rm(javaClassesDir, { recursive: true, force: true });
});

interface MatrixMode {
  readonly poolMode: "session" | "transaction";
  readonly poolSize: number;
}

/**
 * One pgmux in `mode` in front of the shared server, a database of this file's own, and a table per driver;
 * each driver's test runs the whole matrix through it and then counts the rows on the server.
 */
function describeMatrix(title: string, mode: MatrixMode): void {
  describe(title, () => {
    let server: TestPostgres;
    let instance: PoolerInstance;
    const database = `matrix_${mode.poolMode}_${process.pid}`;

    beforeAll(async () => {
      server = await testPostgres();
      await server.createDatabase(database);
      await server.psql(
        DRIVERS.map(
          (d) =>
            `create table rows_${d} (worker int not null, seq int not null, backend int not null, primary key (worker, seq));`,
        ).join("\n"),
        { database },
      );
      instance = await startPooler({
        postgres: server,
        settings: {
          poolMode: mode.poolMode,
          defaultPoolSize: mode.poolSize,
          maxClientConn: WORKERS + 20,
          queryWaitTimeoutMs: RUN_TIMEOUT_SECONDS * 1000,
        },
      });
    });

    afterAll(async () => {
      await stopWithin(instance);
    });

    for (const driver of DRIVERS) {
      test(
        `${driver}: ${WORKERS} connections × ${TRANSACTIONS} transactions of prepared statements over ${mode.poolSize} servers all succeed with the right results`,
        async () => {
          const table = `rows_${driver}`;
          const stopSampling = sampleMax(() => instance.serverCount());
          const report = await runDriver(driver, {
            url: instance.url({ database }),
            table,
            workers: WORKERS,
            transactions: TRANSACTIONS,
            timeoutSeconds: RUN_TIMEOUT_SECONDS,
          });
          const maxServers = stopSampling();
          const total = WORKERS * TRANSACTIONS;

          expect(report).toMatchObject({ driver, ok: true, errors: [], errorCount: 0, transactions: total });
          // Every execution of the probe ran as a named prepared statement on the backend that ran it.
          expect(report).toMatchObject({ probeExecutions: total, preparedExecutions: total });
          expect(maxServers).toBeLessThanOrEqual(mode.poolSize);
          expect(report.backendPids).toBeLessThanOrEqual(mode.poolSize);
          if (mode.poolMode === "session") {
            // Each connection kept its server: the programs measure backends per connection correctly.
            expect(report).toMatchObject({ distinctBackendPids: 1, minDistinctBackendPids: 1 });
          } else {
            // Statements prepared once on a connection ran on backends the driver never sent their Parse to:
            // every connection moved between servers.
            expect(report.distinctBackendPids).toBeGreaterThan(1);
            expect(report.minDistinctBackendPids).toBeGreaterThan(1);
          }

          // On the server: every worker's rows, each once, seq 0..T-1, written on at most poolSize backends.
          const counted = await server.psql(
            `select count(*), count(distinct (worker, seq)), count(distinct backend),
               (select count(*) from (select worker from ${table} group by worker
                 having count(*) = ${TRANSACTIONS} and min(seq) = 0 and max(seq) = ${TRANSACTIONS - 1}) complete)
             from ${table}`,
            { database },
          );
          const [rows, distinctRows, backends, completeWorkers] = counted.split("|").map(Number);
          expect({ rows, distinctRows, completeWorkers }).toEqual({
            rows: total,
            distinctRows: total,
            completeWorkers: WORKERS,
          });
          expect(backends).toBeLessThanOrEqual(mode.poolSize);
        },
        (RUN_TIMEOUT_SECONDS + 40) * 1000,
      );
    }
  });
}

// Always on: session mode, a server per connection, so the worker programs and the checks run in CI today.
describeMatrix("the driver matrix through pgmux in session mode", {
  poolMode: "session",
  poolSize: WORKERS,
});

// Issue 5: transparent prepared statements in transaction mode, many connections on a pool of 5.
describeMatrix("the driver matrix through pgmux in transaction mode", {
  poolMode: "transaction",
  poolSize: TRANSACTION_POOL_SIZE,
});
