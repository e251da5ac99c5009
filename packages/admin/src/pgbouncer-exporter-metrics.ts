/**
 * The metric names and labels of prometheus-community/pgbouncer_exporter v0.11, for dashboards and alerts
 * built on it. The exporter runs SHOW commands against PgBouncer's console and turns columns into metrics;
 * these are built the same way from the same views pgmux's own console serves (PgBouncer 1.18 columns), so
 * the two always agree.
 *
 *   pgbouncer_up, pgbouncer_version_info{version}
 *   pgbouncer_pools_*{database,user}             SHOW POOLS
 *   pgbouncer_stats_totals_*{database}           SHOW STATS_TOTALS (v0.11 renamed pgbouncer_stats_* to these)
 *   pgbouncer_databases_*{name,host,port,database,force_user,pool_mode}   SHOW DATABASES
 *   pgbouncer_databases, pgbouncer_users, ...    SHOW LISTS
 *   pgbouncer_config_max_client_connections, pgbouncer_config_max_user_connections   SHOW CONFIG
 */
import type { ConsoleCell, ConsoleResult, ShowView } from "@pgmux/core";
import type { Registry } from "prom-client";
import type { ScrapeData } from "./pgmux-metrics.js";
import { type Labels, type Sample, SampledCounter, SampledGauge } from "./sampled-metrics.js";

/** The console views the exporter reads (SHOW ...), taken together at the start of each scrape. */
export const PGBOUNCER_EXPORTER_VIEWS: readonly ShowView[] = [
  "pools",
  "stats_totals",
  "databases",
  "lists",
  "config",
  "version",
];

/** One column of a view as one metric, with the exporter's name and the factor it applies. */
interface ColumnMetric {
  readonly column: string;
  readonly name: string;
  readonly help: string;
  readonly kind: "counter" | "gauge";
  readonly factor?: number;
}

const POOL_METRICS: readonly ColumnMetric[] = [
  {
    column: "cl_active",
    name: "client_active_connections",
    help: "Client connections linked to a server or idle",
    kind: "gauge",
  },
  {
    column: "cl_active_cancel_req",
    name: "client_active_cancel_connections",
    help: "Clients whose cancel request was forwarded and awaits the server",
    kind: "gauge",
  },
  {
    column: "cl_waiting",
    name: "client_waiting_connections",
    help: "Client connections waiting for a server",
    kind: "gauge",
  },
  {
    column: "cl_waiting_cancel_req",
    name: "client_waiting_cancel_connections",
    help: "Clients whose cancel request is not forwarded yet",
    kind: "gauge",
  },
  {
    column: "sv_active",
    name: "server_active_connections",
    help: "Server connections linked to a client",
    kind: "gauge",
  },
  {
    column: "sv_active_cancel",
    name: "server_active_cancel_connections",
    help: "Server connections forwarding a cancel request",
    kind: "gauge",
  },
  {
    column: "sv_being_canceled",
    name: "server_being_canceled_connections",
    help: "Servers held back until cancel requests for them have landed",
    kind: "gauge",
  },
  {
    column: "sv_idle",
    name: "server_idle_connections",
    help: "Server connections idle and ready for a client",
    kind: "gauge",
  },
  {
    column: "sv_used",
    name: "server_used_connections",
    help: "Server connections idle past server_check_delay",
    kind: "gauge",
  },
  {
    column: "sv_tested",
    name: "server_testing_connections",
    help: "Server connections running server_reset_query or server_check_query",
    kind: "gauge",
  },
  { column: "sv_login", name: "server_login_connections", help: "Server connections logging in", kind: "gauge" },
  {
    column: "maxwait",
    name: "client_maxwait_seconds",
    help: "Age of the oldest unserved client, in seconds",
    kind: "gauge",
  },
];

const STATS_TOTALS_METRICS: readonly ColumnMetric[] = [
  { column: "query_count", name: "queries_pooled_total", help: "SQL queries pooled", kind: "counter" },
  {
    column: "query_time",
    name: "queries_duration_seconds_total",
    help: "Seconds spent executing queries",
    kind: "counter",
    factor: 1e-6,
  },
  { column: "bytes_received", name: "received_bytes_total", help: "Bytes received from clients", kind: "counter" },
  { column: "bytes_sent", name: "sent_bytes_total", help: "Bytes sent to clients", kind: "counter" },
  {
    column: "wait_time",
    name: "client_wait_seconds_total",
    help: "Seconds clients spent waiting for a server",
    kind: "counter",
    factor: 1e-6,
  },
  { column: "xact_count", name: "sql_transactions_pooled_total", help: "SQL transactions pooled", kind: "counter" },
  {
    column: "xact_time",
    name: "server_in_transaction_seconds_total",
    help: "Seconds servers spent in transactions",
    kind: "counter",
    factor: 1e-6,
  },
];

const DATABASE_METRICS: readonly ColumnMetric[] = [
  { column: "pool_size", name: "pool_size", help: "Maximum number of server connections", kind: "gauge" },
  {
    column: "reserve_pool",
    name: "reserve_pool",
    help: "Maximum number of additional connections for this database",
    kind: "gauge",
  },
  {
    column: "max_connections",
    name: "max_connections",
    help: "Maximum number of allowed connections for this database",
    kind: "gauge",
  },
  {
    column: "current_connections",
    name: "current_connections",
    help: "Current number of connections for this database",
    kind: "gauge",
  },
  { column: "paused", name: "paused", help: "1 if this database is currently paused, else 0", kind: "gauge" },
  { column: "disabled", name: "disabled", help: "1 if this database is currently disabled, else 0", kind: "gauge" },
];

/** SHOW LISTS rows and the exporter's metric for each. */
const LIST_METRICS: Readonly<Record<string, readonly [string, string]>> = {
  databases: ["pgbouncer_databases", "Count of databases"],
  users: ["pgbouncer_users", "Count of users"],
  pools: ["pgbouncer_pools", "Count of pools"],
  free_clients: ["pgbouncer_free_clients", "Count of free clients"],
  used_clients: ["pgbouncer_used_clients", "Count of used clients"],
  login_clients: ["pgbouncer_login_clients", "Count of clients in login state"],
  free_servers: ["pgbouncer_free_servers", "Count of free servers"],
  used_servers: ["pgbouncer_used_servers", "Count of used servers"],
  dns_names: ["pgbouncer_cached_dns_names", "Count of DNS names in the cache"],
  dns_zones: ["pgbouncer_cached_dns_zones", "Count of DNS zones in the cache"],
  dns_queries: ["pgbouncer_in_flight_dns_queries", "Count of in-flight DNS queries"],
};

const CONFIG_METRICS: Readonly<Record<string, readonly [string, string]>> = {
  max_client_conn: ["pgbouncer_config_max_client_connections", "Config maximum number of client connections"],
  max_user_connections: [
    "pgbouncer_config_max_user_connections",
    "Config maximum number of server connections per user",
  ],
};

function cell(view: ConsoleResult, row: ConsoleCell[], column: string): ConsoleCell {
  const i = view.columns.findIndex((c) => c.name === column);
  return i < 0 ? null : (row[i] ?? null);
}

function labelsOf(view: ConsoleResult, row: ConsoleCell[], names: readonly string[]): Labels {
  const labels: Record<string, string> = {};
  for (const n of names) {
    const v = cell(view, row, n);
    labels[n] = v === null ? "" : String(v);
  }
  return labels;
}

function* columnSamples(
  data: ScrapeData,
  viewName: "pools" | "stats_totals" | "databases",
  labelNames: readonly string[],
  metric: ColumnMetric,
): Iterable<Sample> {
  const view = data.view(viewName);
  for (const row of view.rows) {
    const v = cell(view, row, metric.column);
    if (typeof v !== "number") continue;
    yield { labels: labelsOf(view, row, labelNames), value: v * (metric.factor ?? 1) };
  }
}

function registerColumns(
  registry: Registry,
  data: ScrapeData,
  viewName: "pools" | "stats_totals" | "databases",
  prefix: string,
  labelNames: readonly string[],
  metrics: readonly ColumnMetric[],
): void {
  for (const m of metrics) {
    const config = { name: `${prefix}_${m.name}`, help: m.help, labelNames };
    const read = () => columnSamples(data, viewName, labelNames, m);
    if (m.kind === "counter") new SampledCounter(registry, config, read);
    else new SampledGauge(registry, config, read);
  }
}

/** Registers the exporter-compatible metrics on `registry`. */
export function registerPgbouncerExporterMetrics(registry: Registry, data: ScrapeData): void {
  new SampledGauge(registry, { name: "pgbouncer_up", help: "The pgbouncer scrape succeeded" }, () => [
    { labels: {}, value: 1 },
  ]);
  new SampledGauge(
    registry,
    { name: "pgbouncer_version_info", help: "The pgbouncer version info", labelNames: ["version"] },
    () => {
      const view = data.view("version");
      return [{ labels: { version: String(view.rows[0]?.[0] ?? "") }, value: 1 }];
    },
  );
  registerColumns(registry, data, "pools", "pgbouncer_pools", ["database", "user"], POOL_METRICS);
  registerColumns(registry, data, "stats_totals", "pgbouncer_stats_totals", ["database"], STATS_TOTALS_METRICS);
  new SampledCounter(
    registry,
    {
      name: "pgbouncer_stats_totals_server_assignments_total",
      help: "Times a server was assigned to a client",
      labelNames: ["database"],
    },
    function* () {
      const byDatabase = new Map<string, number>();
      for (const p of data.pools)
        byDatabase.set(p.database, (byDatabase.get(p.database) ?? 0) + p.totals.serverAssignments);
      for (const [database, value] of byDatabase) yield { labels: { database }, value };
    },
  );
  registerColumns(
    registry,
    data,
    "databases",
    "pgbouncer_databases",
    ["name", "host", "port", "database", "force_user", "pool_mode"],
    DATABASE_METRICS,
  );
  for (const [list, [name, help]] of Object.entries(LIST_METRICS)) {
    new SampledGauge(registry, { name, help }, function* () {
      const view = data.view("lists");
      const row = view.rows.find((r) => r[0] === list);
      if (row !== undefined && typeof row[1] === "number") yield { labels: {}, value: row[1] };
    });
  }
  for (const [key, [name, help]] of Object.entries(CONFIG_METRICS)) {
    new SampledGauge(registry, { name, help }, function* () {
      const view = data.view("config");
      const row = view.rows.find((r) => r[0] === key);
      const value = row === undefined ? Number.NaN : Number(row[1]);
      if (Number.isFinite(value)) yield { labels: {}, value };
    });
  }
}
