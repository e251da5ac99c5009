import { readFileSync } from "node:fs";
import {
  type ClientSession,
  ControlStateError,
  ControlUnavailableError,
  DEFAULT_SETTINGS,
  PgmuxConfigSchema,
  type Pool,
  Pooler,
  type PoolerControl,
  type PoolerSettings,
  PoolHistograms,
} from "@pgmux/core";
import { pino } from "pino";
import { describe, expect, test } from "vitest";
import { AdminApiErrors } from "./admin-errors.js";
import { AdminServer, type AdminServerOptions } from "./admin-server.js";
import { DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard.js";

/** A pooler that never listens, with one pool whose counters the test sets. */
function setup(options: Partial<AdminServerOptions> = {}, settings: Partial<PoolerSettings> = {}) {
  const pooler = new Pooler({
    settings: {
      ...DEFAULT_SETTINGS,
      users: new Map([["alice", "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"]]),
      fallbackDatabase: { name: "*", host: "127.0.0.1", port: 5432, dbname: "*", serverStartupParameters: new Map() },
      ...settings,
    },
    log: pino({ level: "silent" }),
  });
  const pool = pooler.poolFor("shop", "alice")!;
  Object.assign(pool.stats, { transactions: 7, queries: 21, bytesFromClients: 300, waitMicros: 2_000_000 });
  const admin = new AdminServer({ pooler, port: 0, processMetrics: false, ...options });
  return { pooler, pool, admin };
}

/** A logged-in client of `pool` as the snapshots read it, pinned by `pins` (reason → count) when given. */
function fakeClient(pooler: Pooler, pool: Pool, id: number, pins: Record<string, number> | null): ClientSession {
  const pinMap = new Map(Object.entries(pins ?? {}));
  const client = {
    id,
    state: "idle",
    user: pool.user,
    database: pool.database.name,
    pool,
    server: null,
    remote: "10.0.0.7:51234",
    socket: { localAddress: "127.0.0.1", localPort: 6432 },
    params: new Map([["application_name", "worker"]]),
    connectedAt: 0,
    lastActivityAt: 0,
    waitingSince: 0,
    owed: 0,
    session: { pinned: pinMap.size > 0, pins: pinMap, sets: new Map([["search_path", "SET search_path = app"]]) },
    statements: { size: 3 },
  } as unknown as ClientSession;
  pooler.clients.add(client);
  return client;
}

function metricLine(text: string, name: string, labels: string): string | undefined {
  return text
    .split("\n")
    .find((l) => l.startsWith(`${name}{${labels}} `) || (labels === "" && l.startsWith(`${name} `)));
}

const TOKEN = "s3cret-token";

describe("AdminServer", () => {
  test("probes: alive at once; not started and not ready before the pooler listens", async () => {
    const { admin } = setup();
    expect((await admin.app.inject({ url: "/livez" })).statusCode).toBe(200);
    const startup = await admin.app.inject({ url: "/startupz" });
    expect(startup.statusCode).toBe(503);
    const ready = await admin.app.inject({ url: "/readyz" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().reasons).toContain("pgmux is not listening yet");
  });

  test("readiness fails while draining, and when every pool failed to reach its server", async () => {
    const { admin, pool, pooler } = setup();
    pooler.addresses.push({ host: "127.0.0.1", port: 6432 });
    expect(admin.readiness()).toEqual({ ready: true, reasons: [] });
    pool.lastConnectFailure = "connection refused";
    expect(admin.readiness().reasons).toEqual(["no pool can reach its server (last failure: connection refused)"]);
    pool.lastConnectFailure = "";
    admin.setDraining(true);
    expect((await admin.app.inject({ url: "/readyz" })).json()).toEqual({
      status: "not ready",
      reasons: ["pgmux is shutting down"],
    });
  });

  test("/metrics reads the pool counters at scrape time, in Prometheus text", async () => {
    const { admin, pool } = setup();
    const first = (await admin.app.inject({ url: "/metrics" })).body;
    expect(first).toContain("# TYPE pgmux_transactions_total counter");
    expect(metricLine(first, "pgmux_transactions_total", 'database="shop",user="alice"')).toBe(
      'pgmux_transactions_total{database="shop",user="alice"} 7',
    );
    expect(metricLine(first, "pgmux_client_wait_seconds_total", 'database="shop",user="alice"')).toMatch(/ 2$/);
    pool.stats.transactions = 9;
    const second = (await admin.app.inject({ url: "/metrics" })).body;
    expect(metricLine(second, "pgmux_transactions_total", 'database="shop",user="alice"')).toMatch(/ 9$/);
    expect(second).toContain('pgmux_pool_clients{database="shop",user="alice",state="waiting"} 0');
    expect(second).not.toContain("pgbouncer_");
  });

  test("histograms come from the pool's duration histograms, cumulative, with +Inf, sum and count", async () => {
    const { admin, pool } = setup();
    const histograms = (pool as unknown as { histograms?: PoolHistograms }).histograms ?? new PoolHistograms();
    Object.assign(pool, { histograms });
    histograms.transaction.observe(0.4); // 400 µs
    histograms.transaction.observe(30); // 30 ms
    const text = (await admin.app.inject({ url: "/metrics" })).body;
    const name = "pgmux_transaction_duration_seconds";
    expect(text).toContain(`# TYPE ${name} histogram`);
    expect(text).toContain(`${name}_bucket{database="shop",user="alice",le="0.0005"} 1`);
    expect(text).toContain(`${name}_bucket{database="shop",user="alice",le="0.05"} 2`);
    expect(text).toContain(`${name}_bucket{database="shop",user="alice",le="+Inf"} 2`);
    expect(text).toContain(`${name}_count{database="shop",user="alice"} 2`);
    expect(metricLine(text, `${name}_sum`, 'database="shop",user="alice"')).toMatch(/ 0\.0304$/);
  });

  test("a transaction pool's prepared-statement counters, pins by reason and pinned clients are metrics, read at scrape time", async () => {
    const { admin, pool, pooler } = setup({}, { poolMode: "transaction" });
    Object.assign(pool.statements!.stats, { hits: 120, misses: 4, evictions: 2 });
    pool.pinsByReason.set("listen", 3);
    pool.stats.refusedSessionState = 1;
    fakeClient(pooler, pool, 501, { listen: 1 });
    fakeClient(pooler, pool, 502, null);
    const text = (await admin.app.inject({ url: "/metrics" })).body;
    const labels = 'database="shop",user="alice"';
    expect(text).toContain("# TYPE pgmux_prepared_statement_hits_total counter");
    expect(metricLine(text, "pgmux_prepared_statement_hits_total", labels)).toMatch(/ 120$/);
    expect(metricLine(text, "pgmux_prepared_statement_misses_total", labels)).toMatch(/ 4$/);
    expect(metricLine(text, "pgmux_prepared_statement_evictions_total", labels)).toMatch(/ 2$/);
    expect(metricLine(text, "pgmux_prepared_statements", labels)).toMatch(/ 0$/);
    expect(metricLine(text, "pgmux_server_prepared_statements", labels)).toMatch(/ 0$/);
    expect(text).toContain("# TYPE pgmux_pins_total counter");
    expect(metricLine(text, "pgmux_pins_total", `${labels},reason="listen"`)).toMatch(/ 3$/);
    // Every reason has its series from the start, so rate() sees the first pin of each.
    expect(metricLine(text, "pgmux_pins_total", `${labels},reason="advisory_lock"`)).toMatch(/ 0$/);
    expect(text).toContain("# TYPE pgmux_clients_pinned gauge");
    expect(metricLine(text, "pgmux_clients_pinned", labels)).toMatch(/ 1$/);
    expect(metricLine(text, "pgmux_session_state_refused_total", labels)).toMatch(/ 1$/);
    pool.statements!.stats.hits = 130;
    pool.pinsByReason.set("temp_table", 1);
    const again = (await admin.app.inject({ url: "/metrics" })).body;
    expect(metricLine(again, "pgmux_prepared_statement_hits_total", labels)).toMatch(/ 130$/);
    expect(metricLine(again, "pgmux_pins_total", `${labels},reason="temp_table"`)).toMatch(/ 1$/);
  });

  test("a session pool has no prepared-statement or pin series (it carries and tracks neither)", async () => {
    const { admin } = setup();
    const text = (await admin.app.inject({ url: "/metrics" })).body;
    for (const name of [
      "pgmux_prepared_statement_hits_total",
      "pgmux_pins_total",
      "pgmux_clients_pinned",
      "pgmux_session_state_refused_total",
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
      expect(text, name).not.toMatch(new RegExp(`^${name}\\{`, "m"));
    }
  });

  test("the JSON API shows each client's pins, SETs and statements, and each pool's counters and policy", async () => {
    const { admin, pool, pooler } = setup({}, { poolMode: "transaction", sessionState: "error" });
    Object.assign(pool.statements!.stats, { hits: 9, misses: 1, evictions: 0 });
    pool.pinsByReason.set("advisory_lock", 2);
    fakeClient(pooler, pool, 601, { advisory_lock: 2, listen: 1 });
    fakeClient(pooler, pool, 602, null);
    const { clients } = (await admin.app.inject({ url: "/v1/clients" })).json();
    expect(clients).toMatchObject([
      { id: 601, pins: { advisory_lock: 2, listen: 1 }, replayedSets: 1, preparedStatements: 3 },
      { id: 602, pins: {}, replayedSets: 1, preparedStatements: 3 },
    ]);
    const { pools } = (await admin.app.inject({ url: "/v1/pools" })).json();
    expect(pools[0]).toMatchObject({
      preparedStatements: { hits: 9, misses: 1, evictions: 0, cached: 0, onServers: 0 },
      sessionState: { policy: "error", pinnedClients: 1, pinsByReason: { advisory_lock: 2, listen: 0 }, refused: 0 },
    });
    const overview = (await admin.app.inject({ url: "/v1/overview" })).json();
    expect(overview.pins).toMatchObject({ pinnedClients: 1, byReason: { advisory_lock: 2 } });
    expect(overview.preparedStatements).toEqual({ hits: 9, misses: 1, evictions: 0 });
  });

  test("with pgbouncer_exporter compatibility on, the exporter's names and labels are there too", async () => {
    const { admin } = setup({ pgbouncerExporterCompat: true });
    const text = (await admin.app.inject({ url: "/metrics" })).body;
    expect(metricLine(text, "pgbouncer_up", "")).toBe("pgbouncer_up 1");
    expect(text).toMatch(/^pgbouncer_version_info\{version="PgBouncer 1\.18\.0 \(pgmux [^"]+\)"\} 1$/m);
    expect(metricLine(text, "pgbouncer_pools_client_active_connections", 'database="shop",user="alice"')).toBeDefined();
    expect(metricLine(text, "pgbouncer_pools_server_idle_connections", 'database="shop",user="alice"')).toBeDefined();
    expect(metricLine(text, "pgbouncer_stats_totals_sql_transactions_pooled_total", 'database="shop"')).toBe(
      'pgbouncer_stats_totals_sql_transactions_pooled_total{database="shop"} 7',
    );
    expect(metricLine(text, "pgbouncer_stats_totals_client_wait_seconds_total", 'database="shop"')).toMatch(/ 2$/);
    expect(text).toContain("# TYPE pgbouncer_stats_totals_queries_pooled_total counter");
    expect(text).toMatch(
      /^pgbouncer_databases_pool_size\{name="shop",host="127\.0\.0\.1",port="5432",database="shop",force_user="",pool_mode=""\} 20$/m,
    );
    expect(metricLine(text, "pgbouncer_pools", "")).toBe("pgbouncer_pools 1");
    expect(metricLine(text, "pgbouncer_config_max_client_connections", "")).toBe(
      "pgbouncer_config_max_client_connections 100",
    );
  });

  test("control actions are off without a token, and need the right bearer token with one", async () => {
    const off = setup().admin;
    const disabled = await off.app.inject({ method: "POST", url: "/v1/pause" });
    expect(disabled.statusCode).toBe(403);
    expect(disabled.json()).toEqual({
      error: { code: "control_disabled", message: AdminApiErrors.control_disabled.message },
    });

    let paused = false;
    const control: Partial<PoolerControl> = {
      pause: async () => {
        paused = true;
      },
      isPaused: () => paused,
    };
    const { admin } = setup({ apiToken: TOKEN, control });
    const none = await admin.app.inject({ method: "POST", url: "/v1/pause" });
    expect(none.statusCode).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="pgmux"');
    const wrong = await admin.app.inject({
      method: "POST",
      url: "/v1/pause",
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe("unauthorized");
    expect(paused).toBe(false);
    const right = await admin.app.inject({
      method: "POST",
      url: "/v1/pause",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(right.statusCode).toBe(200);
    expect(right.json()).toEqual({ ok: true, action: "pause" });
    expect(paused).toBe(true);
    expect(admin.readiness().reasons).toContain("pgmux is paused");
  });

  test("inputs are validated: 400 with the reason, 404 for an unknown client, 409 and 501 from the control", async () => {
    const control: Partial<PoolerControl> = {
      killClient: async (id) => id === 42,
      resume: async () => {
        throw new ControlStateError("pgmux is not paused");
      },
      reconnect: async () => {
        throw new ControlUnavailableError("reconnect", "reconnect is not available: no Pooler.reconnect()");
      },
    };
    const { admin } = setup({ apiToken: TOKEN, control });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const post = (url: string, payload?: unknown) =>
      admin.app.inject({
        method: "POST",
        url,
        headers: payload === undefined ? auth : { ...auth, "content-type": "application/json" },
        ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
      });
    const badId = await post("/v1/kill-client/abc");
    expect(badId.statusCode).toBe(400);
    expect(badId.json().error).toEqual({
      code: "bad_request",
      message: "id: a client id is a whole number (see GET /v1/clients)",
    });
    expect((await post("/v1/kill-client/7")).json().error.code).toBe("client_not_found");
    expect((await post("/v1/kill-client/42")).json()).toEqual({ ok: true, action: "kill-client", client: 42 });
    const extra = await post("/v1/pause", { database: "shop" });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.code).toBe("bad_request");
    const badJson = await admin.app.inject({
      method: "POST",
      url: "/v1/pause",
      headers: { ...auth, "content-type": "application/json" },
      payload: "{nope",
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.code).toBe("bad_request");
    const resume = await post("/v1/resume");
    expect(resume.statusCode).toBe(409);
    expect(resume.json().error).toEqual({ code: "conflict", message: "pgmux is not paused" });
    const reconnect = await post("/v1/reconnect");
    expect(reconnect.statusCode).toBe(501);
    expect(reconnect.json().error.code).toBe("not_implemented");
    expect((await post("/v1/shutdown", { mode: "sideways" })).statusCode).toBe(400);
  });

  test("reload without a reload from the process is 501, saying who can reload", async () => {
    const { admin } = setup({ apiToken: TOKEN });
    const r = await admin.app.inject({
      method: "POST",
      url: "/v1/reload",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(r.statusCode).toBe(501);
    expect(r.json().error.message).toContain("only the pgmux command");
  });

  test("shutdown answers, marks pgmux not ready, then runs the control's shutdown", async () => {
    let shutdownCalled!: (mode: string) => void;
    const called = new Promise<string>((resolve) => {
      shutdownCalled = resolve;
    });
    const control: Partial<PoolerControl> = { shutdown: async (mode) => shutdownCalled(mode) };
    const { admin } = setup({ apiToken: TOKEN, control });
    const r = await admin.app.inject({
      method: "POST",
      url: "/v1/shutdown",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      payload: JSON.stringify({ mode: "graceful" }),
    });
    expect(r.json()).toEqual({ ok: true, action: "shutdown", mode: "graceful" });
    expect(admin.readiness().reasons).toContain("pgmux is shutting down");
    expect(await called).toBe("graceful");
  });

  test("the JSON API lists pools, clients and servers; unknown paths are JSON 404s", async () => {
    const { admin } = setup();
    const pools = (await admin.app.inject({ url: "/v1/pools" })).json();
    expect(pools.pools[0]).toMatchObject({ name: "shop/alice", totals: { transactions: 7 } });
    expect((await admin.app.inject({ url: "/v1/clients" })).json()).toEqual({ clients: [] });
    expect((await admin.app.inject({ url: "/v1/servers" })).json()).toEqual({ servers: [] });
    const overview = (await admin.app.inject({ url: "/v1/overview" })).json();
    expect(overview).toMatchObject({
      totals: { transactions: 7 },
      controlEnabled: false,
      pins: { pinnedClients: 0, refused: 0, byReason: { listen: 0 } },
      preparedStatements: { hits: 0, misses: 0, evictions: 0 },
    });
    const missing = await admin.app.inject({ url: "/v1/nothing" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: { code: "not_found", message: "no such endpoint: GET /v1/nothing" } });
  });

  test("/v1/config never shows a secret", async () => {
    const config = PgmuxConfigSchema.parse({
      pgmux: { auth_ldap_options: "bindpasswd=hunter2" },
      databases: { shop: { host: "db", password: "hunter3" } },
      users: {},
      peers: {},
      auth: { alice: "hunter4" },
    });
    const withConfig = (await setup({ config }).admin.app.inject({ url: "/v1/config" })).body;
    expect(withConfig).toContain('"source":"config"');
    for (const secret of ["hunter2", "hunter3", "hunter4"]) expect(withConfig).not.toContain(secret);
    const fromSettings = (
      await setup(
        {},
        {
          databases: new Map([
            [
              "shop",
              {
                name: "shop",
                host: "db",
                port: 5432,
                dbname: "shop",
                password: "hunter5",
                serverStartupParameters: new Map(),
              },
            ],
          ]),
        },
      ).admin.app.inject({ url: "/v1/config" })
    ).json();
    expect(fromSettings.source).toBe("settings");
    expect(fromSettings.settings.users).toEqual({ alice: "********" });
    expect(fromSettings.settings.databases.shop.password).toBe("********");
    expect(JSON.stringify(fromSettings)).not.toContain("SCRAM-SHA-256$");
  });

  test("trace requests are validated, and reveal needs a token", async () => {
    const { admin } = setup();
    const none = await admin.app.inject({ url: "/v1/trace" });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.message).toContain("name what to trace");
    expect((await admin.app.inject({ url: "/v1/trace?client=abc" })).statusCode).toBe(400);
    expect((await admin.app.inject({ url: "/v1/trace.txt?user=a&seconds=9999" })).statusCode).toBe(400);
    expect((await admin.app.inject({ url: "/v1/trace?user=a&bogus=1" })).statusCode).toBe(400);
    const reveal = await admin.app.inject({ url: "/v1/trace?user=a&reveal=true" });
    expect(reveal.statusCode).toBe(403);
    expect(reveal.json().error.code).toBe("reveal_needs_token");
  });

  test("the dashboard is a static page and a script that parses", async () => {
    const { admin } = setup();
    const page = await admin.app.inject({ url: "/" });
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.body).toBe(DASHBOARD_HTML);
    expect(page.body).toContain('<script src="/dashboard.js"></script>');
    const script = await admin.app.inject({ url: "/dashboard.js" });
    expect(script.headers["content-type"]).toContain("javascript");
    expect(() => new Function(DASHBOARD_JS)).not.toThrow();
  });

  test("start() binds a free port for port 0 and reports its URL", async () => {
    const { admin } = setup();
    const url = await admin.start();
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(admin.url).toBe(url);
      const r = await fetch(`${url}/livez`);
      expect(await r.json()).toEqual({ status: "ok" });
    } finally {
      await admin.close();
    }
  });

  test("every API error code is documented in docs/admin.md", () => {
    const docs = readFileSync(new URL("../../../docs/admin.md", import.meta.url), "utf8");
    const missing = Object.keys(AdminApiErrors).filter((code) => !docs.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
