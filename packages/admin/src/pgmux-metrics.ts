/**
 * pgmux's own metrics (`pgmux_*`), read from core's counters and snapshots at scrape time. Names follow
 * Prometheus conventions: counters end in `_total`, durations are `_seconds`, sizes `_bytes`; per-pool
 * series carry `database` and `user`.
 */
import {
  type ClientState,
  type ConsoleResult,
  clientStateCounts,
  errorCounts,
  type Pooler,
  type PoolerErrorCode,
  PoolerErrors,
  type PoolSessionStateSnapshot,
  type PoolSnapshot,
  type PreparedStatementsSnapshot,
  pgbouncerView,
  type ShowView,
  snapshotPools,
  type Tracer,
} from "@pgmux/core";
import type { Registry } from "prom-client";
import {
  type HistogramSample,
  type Labels,
  type Sample,
  SampledCounter,
  SampledGauge,
  SampledHistogram,
} from "./sampled-metrics.js";

/** What the metrics read from: the pooler, and the admin server's own state. */
export interface MetricsSource {
  readonly pooler: Pooler;
  readonly version: string;
  ready(): boolean;
  paused(): boolean;
  tracer(): Tracer | null;
}

/** The snapshots of one scrape, taken once however many metrics read them. */
export class ScrapeData {
  private poolsCache: PoolSnapshot[] | null = null;
  private readonly views = new Map<ShowView, ConsoleResult>();

  /** `eagerViews`: the console views read by this registry's metrics, taken together at begin(). */
  constructor(
    readonly source: MetricsSource,
    private readonly eagerViews: readonly ShowView[] = [],
  ) {}

  /**
   * Takes this scrape's snapshots, all at one instant, so that every metric of a scrape (and the pgmux and
   * exporter-compatible families) describes the same moment even if a collector yields to I/O.
   */
  begin(): void {
    this.views.clear();
    this.poolsCache = snapshotPools(this.source.pooler);
    for (const v of this.eagerViews) this.views.set(v, pgbouncerView(this.source.pooler, v));
  }

  get pools(): PoolSnapshot[] {
    this.poolsCache ??= snapshotPools(this.source.pooler);
    return this.poolsCache;
  }

  /** A SHOW view of the admin console (the compat metrics are built from these, as the exporter does). */
  view(name: ShowView): ConsoleResult {
    let v = this.views.get(name);
    if (v === undefined) {
      v = pgbouncerView(this.source.pooler, name);
      this.views.set(name, v);
    }
    return v;
  }
}

const POOL_LABELS = ["database", "user"] as const;

function poolLabels(p: PoolSnapshot): Labels {
  return { database: p.database, user: p.user };
}

function* perPool(data: ScrapeData, value: (p: PoolSnapshot) => number): Iterable<Sample> {
  for (const p of data.pools) yield { labels: poolLabels(p), value: value(p) };
}

/** Per-pool samples of the pools that have `part` (prepared statements, session state): the others have no series. */
function* perPoolPart<T>(
  data: ScrapeData,
  part: (p: PoolSnapshot) => T | null,
  value: (t: T) => number,
): Iterable<Sample> {
  for (const p of data.pools) {
    const t = part(p);
    if (t !== null) yield { labels: poolLabels(p), value: value(t) };
  }
}

const prepared = (p: PoolSnapshot): PreparedStatementsSnapshot | null => p.preparedStatements;
const sessionState = (p: PoolSnapshot): PoolSessionStateSnapshot | null => p.sessionState;

function* perPoolState<K extends string>(data: ScrapeData, pick: (p: PoolSnapshot) => Readonly<Record<K, number>>) {
  for (const p of data.pools) {
    for (const [state, value] of Object.entries(pick(p)) as [K, number][]) {
      yield { labels: { ...poolLabels(p), state }, value };
    }
  }
}

function* histograms(data: ScrapeData, which: "wait" | "transaction" | "query"): Iterable<HistogramSample> {
  for (const p of data.pools) {
    if (p.histograms !== null) yield { labels: poolLabels(p), histogram: p.histograms[which] };
  }
}

function* fromRecord(record: Readonly<Record<string, number>>, label: string): Iterable<Sample> {
  for (const [key, value] of Object.entries(record)) yield { labels: { [label]: key }, value };
}

/** Registers every pgmux_* metric on `registry`. */
export function registerPgmuxMetrics(registry: Registry, data: ScrapeData): void {
  const source = data.source;
  const one = (value: number, labels: Labels = {}): Sample[] => [{ labels, value }];

  new SampledGauge(registry, { name: "pgmux_info", help: "pgmux version (always 1)", labelNames: ["version"] }, () =>
    one(1, { version: source.version }),
  );
  new SampledGauge(
    registry,
    { name: "pgmux_ready", help: "1 when pgmux accepts clients and a pool can reach its server (as /readyz)" },
    () => one(source.ready() ? 1 : 0),
  );
  new SampledGauge(registry, { name: "pgmux_paused", help: "1 while pools are paused (PAUSE)" }, () =>
    one(source.paused() ? 1 : 0),
  );
  new SampledGauge(
    registry,
    { name: "pgmux_clients", help: "Client connections by state, over every pool", labelNames: ["state"] },
    function* () {
      const counts = clientStateCounts(source.pooler);
      for (const state of Object.keys(counts) as ClientState[]) {
        if (state !== "closed") yield { labels: { state }, value: counts[state] };
      }
    },
  );

  // ---- per pool ----
  new SampledGauge(
    registry,
    {
      name: "pgmux_pool_clients",
      help: "Clients of a pool: active (holding a server), idle, waiting (for a server)",
      labelNames: [...POOL_LABELS, "state"],
    },
    () => perPoolState(data, (p) => p.clients),
  );
  new SampledGauge(
    registry,
    {
      name: "pgmux_pool_servers",
      help: "Servers of a pool: active (linked), idle, used (idle past server_check_delay), tested (running pgmux's own query), login, being_canceled",
      labelNames: [...POOL_LABELS, "state"],
    },
    () =>
      perPoolState(data, (p) => ({
        active: p.servers.active,
        idle: p.servers.idle,
        used: p.servers.used,
        tested: p.servers.tested,
        login: p.servers.login,
        being_canceled: p.servers.beingCanceled,
      })),
  );
  new SampledGauge(
    registry,
    { name: "pgmux_pool_size", help: "Configured server connections of a pool", labelNames: POOL_LABELS },
    () => perPool(data, (p) => p.size),
  );
  new SampledGauge(
    registry,
    {
      name: "pgmux_pool_max_wait_seconds",
      help: "How long the oldest waiting client of a pool has waited for a server",
      labelNames: POOL_LABELS,
    },
    () => perPool(data, (p) => p.maxWaitSeconds),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_transactions_total",
      help: "Transactions completed (a ReadyForQuery 'I' with nothing owed)",
      labelNames: POOL_LABELS,
    },
    () => perPool(data, (p) => p.totals.transactions),
  );
  new SampledCounter(
    registry,
    { name: "pgmux_queries_total", help: "Queries completed (one per ReadyForQuery)", labelNames: POOL_LABELS },
    () => perPool(data, (p) => p.totals.queries),
  );
  new SampledCounter(
    registry,
    { name: "pgmux_received_bytes_total", help: "Bytes received from clients", labelNames: POOL_LABELS },
    () => perPool(data, (p) => p.totals.bytesFromClients),
  );
  new SampledCounter(
    registry,
    { name: "pgmux_sent_bytes_total", help: "Bytes sent to clients (received from servers)", labelNames: POOL_LABELS },
    () => perPool(data, (p) => p.totals.bytesFromServers),
  );
  new SampledCounter(
    registry,
    { name: "pgmux_server_assignments_total", help: "Times a server was linked to a client", labelNames: POOL_LABELS },
    () => perPool(data, (p) => p.totals.serverAssignments),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_client_wait_seconds_total",
      help: "Time clients spent waiting for a server",
      labelNames: POOL_LABELS,
    },
    () => perPool(data, (p) => p.totals.waitSeconds),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_transaction_seconds_total",
      help: "Time servers spent in client transactions",
      labelNames: POOL_LABELS,
    },
    () => perPool(data, (p) => p.totals.transactionSeconds),
  );
  new SampledHistogram(
    registry,
    {
      name: "pgmux_client_wait_duration_seconds",
      help: "How long a client waited for a server, per wait",
      labelNames: POOL_LABELS,
    },
    () => histograms(data, "wait"),
  );
  new SampledHistogram(
    registry,
    {
      name: "pgmux_transaction_duration_seconds",
      help: "Transaction duration, from the first request to the ReadyForQuery 'I' that ends it",
      labelNames: POOL_LABELS,
    },
    () => histograms(data, "transaction"),
  );
  new SampledHistogram(
    registry,
    {
      name: "pgmux_query_duration_seconds",
      help: "Query duration, from the request to its ReadyForQuery",
      labelNames: POOL_LABELS,
    },
    () => histograms(data, "query"),
  );

  // ---- prepared statements carried across servers (transaction and statement pools) ----
  new SampledCounter(
    registry,
    {
      name: "pgmux_prepared_statement_hits_total",
      help: "A client's Parse or Bind of a named statement found it already prepared on its server",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, prepared, (s) => s.hits),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_prepared_statement_misses_total",
      help: "A named statement was prepared on a server that lacked it (the client's Parse, or one pgmux sent first)",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, prepared, (s) => s.misses),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_prepared_statement_evictions_total",
      help: "Prepared statements closed on a server to keep it within max_prepared_statements",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, prepared, (s) => s.evictions),
  );
  new SampledGauge(
    registry,
    {
      name: "pgmux_prepared_statements",
      help: "Distinct prepared statements (query text and parameter types) a pool shares among its clients",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, prepared, (s) => s.cached),
  );
  new SampledGauge(
    registry,
    {
      name: "pgmux_server_prepared_statements",
      help: "Prepared statements held by a pool's servers, summed over its servers",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, prepared, (s) => s.onServers),
  );

  // ---- session state and pins (transaction and statement pools) ----
  new SampledGauge(
    registry,
    {
      name: "pgmux_clients_pinned",
      help: "Clients pinned to their server now (LISTEN, advisory locks, temp tables, held cursors, SQL PREPARE, LOAD, ...)",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, sessionState, (s) => s.pinnedClients),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_pins_total",
      help: "Times a client came to be pinned to its server for a reason it was not already pinned for, by reason",
      labelNames: [...POOL_LABELS, "reason"],
    },
    function* () {
      for (const p of data.pools) {
        if (p.sessionState === null) continue;
        for (const [reason, value] of Object.entries(p.sessionState.pinsByReason)) {
          yield { labels: { ...poolLabels(p), reason }, value };
        }
      }
    },
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_session_state_refused_total",
      help: "Statements refused with 0A000 because they would pin the client (session_state = error)",
      labelNames: POOL_LABELS,
    },
    () => perPoolPart(data, sessionState, (s) => s.refused),
  );

  // ---- errors and refusals ----
  new SampledCounter(
    registry,
    {
      name: "pgmux_server_errors_total",
      help: "ErrorResponses from servers relayed to clients, by SQLSTATE",
      labelNames: ["sqlstate"],
    },
    () => fromRecord(errorCounts(source.pooler).serverBySqlState, "sqlstate"),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_pooler_errors_total",
      help: "Errors pgmux raised itself, by code and SQLSTATE",
      labelNames: ["code", "sqlstate"],
    },
    function* () {
      for (const [code, value] of Object.entries(errorCounts(source.pooler).poolerByCode)) {
        yield { labels: { code, sqlstate: PoolerErrors[code as PoolerErrorCode]?.sqlState ?? "" }, value };
      }
    },
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_connections_refused_total",
      help: "Connections refused before anything was read, by reason",
      labelNames: ["reason"],
    },
    () => fromRecord(errorCounts(source.pooler).refusedByReason, "reason"),
  );
  new SampledCounter(registry, { name: "pgmux_clients_accepted_total", help: "Client connections accepted" }, () =>
    one(source.pooler.stats.clientsAccepted),
  );
  new SampledCounter(registry, { name: "pgmux_servers_opened_total", help: "Server connections opened" }, () =>
    one(source.pooler.stats.serversOpened),
  );

  // ---- the live trace ----
  new SampledGauge(registry, { name: "pgmux_trace_subscriptions", help: "Open live-trace subscriptions" }, () =>
    one(source.tracer()?.subscriptionCount ?? 0),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_trace_chunks_recorded_total",
      help: "Chunks handed to trace taps (stays 0 while nobody traces)",
    },
    () => one(source.tracer()?.chunksRecorded ?? 0),
  );
  new SampledCounter(
    registry,
    {
      name: "pgmux_trace_lines_dropped_total",
      help: "Trace lines lost to a subscription's rate limit or full buffer",
    },
    () => one(source.tracer()?.linesDropped ?? 0),
  );
}
