/**
 * /metrics under a real load: pgbench through pgmux, then the counters and histograms checked against the
 * work pgbench reports, the pgbouncer_exporter-compatible names, and `promtool check metrics`.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdminServer } from "@pgmux/admin";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, runCommand, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

let names = 0;
function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${++names}`;
}

const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");
const PROMTOOL = "/usr/bin/promtool";

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

function value(metrics: Map<string, number>, key: string): number {
  const v = metrics.get(key);
  if (v === undefined) throw new Error(`metric ${key} is missing from /metrics`);
  return v;
}

async function scrape(admin: AdminServer): Promise<string> {
  const r = await fetch(`${admin.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toContain("text/plain");
  return r.text();
}

/** One transaction of four statements; pgbench runs only this (-n: no vacuum, no table checks). */
const SCRIPT = `\\set id random(1, 100)
BEGIN;
UPDATE counters SET n = n + 1 WHERE id = :id;
SELECT n FROM counters WHERE id = :id;
END;
`;
const STATEMENTS_PER_TRANSACTION = 4;
const CLIENTS = 10;
const SECONDS = 5;
const POOL_SIZE = 4;

describe("/metrics under a pgbench load", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;
  let database: string;
  let scriptDir: string;
  let transactions = 0;
  let underLoad = "";
  let afterLoad = "";

  beforeAll(async () => {
    server = await testPostgres();
    database = unique("admin_metrics_db");
    await server.createDatabase(database);
    await server.psql(
      "create table counters (id int primary key, n bigint not null default 0);" +
        "insert into counters (id) select g from generate_series(1, 100) g;",
      { database },
    );
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: POOL_SIZE } });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, pgbouncerExporterCompat: true });
    await admin.start();
    scriptDir = mkdtempSync(join(tmpdir(), "pgmux-admin-metrics-"));
    writeFileSync(join(scriptDir, "tx.sql"), SCRIPT);

    const pgbench = join(findPgBinDir(), "pgbench");
    const run = runCommand(
      pgbench,
      [
        ...["-n", "-M", "simple", "-c", String(CLIENTS), "-j", "2", "-T", String(SECONDS)],
        ...["-f", join(scriptDir, "tx.sql")],
        ...["-h", instance.host, "-p", String(instance.port), "-U", server.user, database],
      ],
      { timeoutMs: (SECONDS + 30) * 1000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    // A scrape while the load runs: every pgbench client connected, transactions flowing.
    const key = `pgmux_transactions_total{database="${database}",user="${server.user}"}`;
    await waitUntil(
      "transactions counted while pgbench runs",
      async () => {
        const text = await scrape(admin);
        const m = parseMetrics(text);
        const clients = ["active", "idle", "waiting"].reduce(
          (sum, state) =>
            sum + (m.get(`pgmux_pool_clients{database="${database}",user="${server.user}",state="${state}"}`) ?? 0),
          0,
        );
        if ((m.get(key) ?? 0) > 100 && clients === CLIENTS) underLoad = text;
        return underLoad !== "";
      },
      { timeoutMs: (SECONDS + 10) * 1000, intervalMs: 100 },
    );
    const result = await run;
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0) throw new Error(`pgbench failed:\n${output}`);
    const processed = /number of transactions actually processed: (\d+)/.exec(output);
    if (processed === null) throw new Error(`no transaction count in pgbench's output:\n${output}`);
    transactions = Number(processed[1]);
    // pgbench has disconnected: every counter is final.
    await waitUntil("pgbench's clients gone", () => instance.pooler.clients.size === 0, { timeoutMs: 10_000 });
    afterLoad = await scrape(admin);
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, "admin-metrics-under-load.txt"), underLoad);
    writeFileSync(join(ARTIFACTS, "admin-metrics-after-load.txt"), afterLoad);
  }, 120_000);

  afterAll(async () => {
    await admin?.close();
    await instance?.stop();
    if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
  });

  const labels = () => `database="${database}",user="${server.user}"`;

  test("during the load every pgbench client is a client of the pool and no pool holds more servers than its size", () => {
    const m = parseMetrics(underLoad);
    const servers = ["active", "idle", "used", "tested", "login", "being_canceled"].reduce(
      (sum, state) => sum + (m.get(`pgmux_pool_servers{${labels()},state="${state}"}`) ?? 0),
      0,
    );
    expect(servers).toBeGreaterThan(0);
    expect(servers).toBeLessThanOrEqual(POOL_SIZE);
    expect(value(m, `pgmux_pool_size{${labels()}}`)).toBe(POOL_SIZE);
  });

  test("the transactions counted are pgbench's transactions, and the queries four for each", () => {
    const m = parseMetrics(afterLoad);
    expect(transactions).toBeGreaterThan(0);
    expect(value(m, `pgmux_transactions_total{${labels()}}`)).toBe(transactions);
    expect(value(m, `pgmux_queries_total{${labels()}}`)).toBe(transactions * STATEMENTS_PER_TRANSACTION);
    // In transaction mode each transaction takes a server once.
    expect(value(m, `pgmux_server_assignments_total{${labels()}}`)).toBe(transactions);
    expect(value(m, `pgmux_received_bytes_total{${labels()}}`)).toBeGreaterThan(0);
    expect(value(m, `pgmux_sent_bytes_total{${labels()}}`)).toBeGreaterThan(0);
    expect(value(m, `pgmux_transaction_seconds_total{${labels()}}`)).toBeGreaterThan(0);
    expect(value(m, `pgmux_client_wait_seconds_total{${labels()}}`)).toBeGreaterThanOrEqual(0);
    expect(value(m, "pgmux_clients_accepted_total")).toBeGreaterThanOrEqual(CLIENTS);
  });

  test("the histograms count every transaction, query and wait (needs the observe() hooks in pool.ts and client-session.ts)", () => {
    const m = parseMetrics(afterLoad);
    const count = (name: string) => m.get(`${name}_count{${labels()}}`);
    expect(
      count("pgmux_transaction_duration_seconds"),
      "no histogram samples: pool.histograms and its observe() calls are not wired into the engine yet",
    ).toBeDefined();
    expect(count("pgmux_transaction_duration_seconds")).toBe(transactions);
    expect(count("pgmux_query_duration_seconds")).toBe(transactions * STATEMENTS_PER_TRANSACTION);
    expect(count("pgmux_client_wait_duration_seconds")).toBe(value(m, `pgmux_server_assignments_total{${labels()}}`));
    expect(m.get(`pgmux_transaction_duration_seconds_bucket{${labels()},le="+Inf"}`)).toBe(transactions);
    // Buckets are cumulative; the sum is the total time in transaction the counter reports.
    const buckets = [...m]
      .filter(([k]) => k.startsWith(`pgmux_transaction_duration_seconds_bucket{${labels()},`))
      .map(([, v]) => v);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
    expect(m.get(`pgmux_transaction_duration_seconds_sum{${labels()}}`)).toBeCloseTo(
      value(m, `pgmux_transaction_seconds_total{${labels()}}`),
      3,
    );
  });

  test("pgbouncer_exporter's names and labels are there, with the same counts", () => {
    const m = parseMetrics(afterLoad);
    expect(value(m, "pgbouncer_up")).toBe(1);
    expect(value(m, `pgbouncer_stats_totals_sql_transactions_pooled_total{database="${database}"}`)).toBe(transactions);
    expect(value(m, `pgbouncer_stats_totals_queries_pooled_total{database="${database}"}`)).toBe(
      transactions * STATEMENTS_PER_TRANSACTION,
    );
    expect(value(m, `pgbouncer_stats_totals_received_bytes_total{database="${database}"}`)).toBe(
      value(m, `pgmux_received_bytes_total{${labels()}}`),
    );
    const under = parseMetrics(underLoad);
    const pool = `database="${database}",user="${server.user}"`;
    const active = value(under, `pgbouncer_pools_client_active_connections{${pool}}`);
    const waiting = value(under, `pgbouncer_pools_client_waiting_connections{${pool}}`);
    expect(active + waiting).toBe(CLIENTS);
    for (const name of [
      "server_active_connections",
      "server_idle_connections",
      "server_used_connections",
      "server_testing_connections",
      "server_login_connections",
      "client_maxwait_seconds",
    ]) {
      expect(under.has(`pgbouncer_pools_${name}{${pool}}`), name).toBe(true);
    }
    expect(afterLoad).toMatch(
      new RegExp(
        `^pgbouncer_databases_current_connections\\{name="${database}",host="[^"]*",port="\\d+",database="${database}",force_user="",pool_mode=""\\} \\d+$`,
        "m",
      ),
    );
    expect(value(m, "pgbouncer_config_max_client_connections")).toBe(instance.pooler.settings.maxClientConn);
  });

  test("promtool check metrics accepts the output", async (ctx) => {
    if (!existsSync(PROMTOOL)) {
      console.warn(
        `\n*** ${PROMTOOL} is not installed: skipping promtool check metrics (apt-get install prometheus) ***\n`,
      );
      ctx.skip();
      return;
    }
    const result = await runCommand(PROMTOOL, ["check", "metrics"], { timeoutMs: 30_000, input: afterLoad });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
  });
});
