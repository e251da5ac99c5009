/**
 * The admin HTTP server: Prometheus metrics, Kubernetes probes, a JSON API over the engine's snapshots,
 * control actions behind a bearer token, the live protocol trace, and the dashboard page. It runs on its
 * own address (admin_listen_addr:admin_listen_port, 127.0.0.1:9127 by default) beside the pooler and reads
 * the engine only when asked: nothing here runs per message.
 *
 * It stays up while the pooler drains, so /metrics can be scraped during a graceful shutdown; the owner
 * closes it last.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import {
  ControlStateError,
  ControlUnavailableError,
  clientStateCounts,
  configureAdminConsole,
  consoleVersionString,
  engineControl,
  errorCounts,
  PGBOUNCER_COMPAT_VERSION,
  type PgmuxConfig,
  type Pooler,
  type PoolerControl,
  pgmuxPackageVersion,
  pinTotals,
  poolerTotals,
  preparedStatementTotals,
  type ShutdownMode,
  snapshotClients,
  snapshotPools,
  snapshotServers,
  TraceLimitError,
  type Tracer,
} from "@pgmux/core";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { collectDefaultMetrics, Registry } from "prom-client";
import { z } from "zod";
import { errorBody, sendError } from "./admin-errors.js";
import { configView } from "./config-view.js";
import { DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard.js";
import { PGBOUNCER_EXPORTER_VIEWS, registerPgbouncerExporterMetrics } from "./pgbouncer-exporter-metrics.js";
import { registerPgmuxMetrics, ScrapeData } from "./pgmux-metrics.js";
import { TraceQuerySchema, TraceStream, traceRequest } from "./trace-stream.js";

/** prom-client default metrics that are gauges with a `_total` suffix (nodejs_active_handles etc. remain). */
const LINTED_DEFAULT_METRICS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

export const DEFAULT_ADMIN_HOST = "127.0.0.1";
/** The port Prometheus scrape configs already use for pgbouncer_exporter. */
export const DEFAULT_ADMIN_PORT = 9127;

export interface AdminServerOptions {
  readonly pooler: Pooler;
  /** The root logger; the server logs through a child. Silent when absent. */
  readonly log?: Logger;
  /** admin_listen_addr (default 127.0.0.1). */
  readonly host?: string;
  /** admin_listen_port (default 9127; 0 picks a free port). */
  readonly port?: number;
  /** The loaded configuration, for /v1/config and SHOW CONFIG (always shown redacted). */
  readonly config?: PgmuxConfig;
  /** admin_api_token: enables the control actions, which then need `Authorization: Bearer <token>`. */
  readonly apiToken?: string;
  /** Also emit prometheus-community/pgbouncer_exporter v0.11's metric names and labels. */
  readonly pgbouncerExporterCompat?: boolean;
  /** Actions the process provides (reload, shutdown), or overrides of the engine's own. */
  readonly control?: Partial<PoolerControl>;
  /** Process metrics (CPU, memory, event loop, GC) from prom-client; default true. */
  readonly processMetrics?: boolean;
  /** pgmux's version, for pgmux_info and the dashboard (default: @pgmux/core's). */
  readonly version?: string;
  /** The root logger's level, readable at GET /v1/log-level and changeable (with the token) by POST. */
  readonly logLevel?: LogLevelControl;
}

export interface LogLevelControl {
  get(): string;
  /** False when `level` is not a level the logger knows. */
  set(level: string): boolean;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, when not. */
  readonly reasons: readonly string[];
}

const EmptyBody = z.strictObject({}).optional();
const LogLevelBody = z.strictObject({
  level: z.string({ error: 'expected {"level": "info"} (one of fatal, error, warn, info, debug, trace, silent)' }),
});
const ShutdownBody = z.strictObject({ mode: z.enum(["immediate", "graceful"]).optional() }).optional();
const ClientIdParams = z.strictObject({
  id: z.string().regex(/^\d+$/, { error: "a client id is a whole number (see GET /v1/clients)" }).transform(Number),
});

function zodMessage(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export class AdminServer {
  readonly app: FastifyInstance;
  readonly registry = new Registry();
  /** The control shared by the HTTP actions and the SQL console. */
  readonly control: PoolerControl;
  readonly pooler: Pooler;
  readonly version: string;
  private readonly host: string;
  private readonly port: number;
  private readonly tokenDigest: Buffer | null;
  private readonly scrape: ScrapeData;
  private readonly streams = new Set<TraceStream>();
  private readonly startedAt = Date.now();
  private config: PgmuxConfig | null;
  private readonly logLevel: LogLevelControl | null;
  private draining = false;
  private boundUrl: string | null = null;

  constructor(options: AdminServerOptions) {
    this.pooler = options.pooler;
    this.host = options.host ?? DEFAULT_ADMIN_HOST;
    this.port = options.port ?? DEFAULT_ADMIN_PORT;
    this.version = options.version ?? pgmuxPackageVersion();
    this.config = options.config ?? null;
    this.logLevel = options.logLevel ?? null;
    this.tokenDigest = options.apiToken !== undefined && options.apiToken !== "" ? sha256(options.apiToken) : null;
    this.control = { ...engineControl(this.pooler), ...options.control };
    configureAdminConsole(this.pooler, { control: this.control, config: () => this.config });

    const compat = options.pgbouncerExporterCompat === true;
    this.scrape = new ScrapeData(
      {
        pooler: this.pooler,
        version: this.version,
        ready: () => this.readiness().ready,
        paused: () => this.control.isPaused(),
        tracer: () => this.tracer(),
      },
      compat ? PGBOUNCER_EXPORTER_VIEWS : [],
    );
    registerPgmuxMetrics(this.registry, this.scrape);
    if (compat) registerPgbouncerExporterMetrics(this.registry, this.scrape);
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters fail `promtool check metrics`; the per-type gauges beside them stay.
      for (const name of LINTED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }

    // Fastify logs every request at info: its logger starts at warn, so a scrape every few seconds stays quiet.
    this.app = Fastify(
      options.log !== undefined
        ? { loggerInstance: options.log.child({ component: "admin" }, { level: "warn" }) as FastifyBaseLogger }
        : { logger: false },
    );
    this.routes();
  }

  /** The bound URL (`http://host:port`); throws before start(). */
  get url(): string {
    if (this.boundUrl === null) throw new Error("the admin server is not listening (call start())");
    return this.boundUrl;
  }

  /** Listens; resolves with the URL. */
  async start(): Promise<string> {
    await this.app.listen({ host: this.host, port: this.port });
    const address = this.app.server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.boundUrl = `http://${host}:${address.port}`;
    return this.boundUrl;
  }

  /** Ends open trace streams and stops listening. */
  async close(): Promise<void> {
    for (const s of [...this.streams]) s.end();
    await this.app.close();
  }

  /** Marks pgmux as draining (shutting down): /readyz fails from now on, /metrics keeps answering. */
  setDraining(draining: boolean): void {
    this.draining = draining;
  }

  /** A new configuration after a reload, for /v1/config and SHOW CONFIG. */
  setConfig(config: PgmuxConfig | null): void {
    this.config = config;
  }

  /** Accepting clients, not draining or paused, and at least one pool can reach its server (or none exists). */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.pooler.addresses.length === 0) reasons.push("pgmux is not listening yet");
    if (this.draining) reasons.push("pgmux is shutting down");
    if (this.control.isPaused()) reasons.push("pgmux is paused");
    const pools = [...this.pooler.pools.values()];
    if (pools.length > 0) {
      const snapshots = snapshotPools(this.pooler);
      if (!snapshots.some((p) => p.reachable)) {
        const failure = snapshots.find((p) => p.lastConnectFailure !== "")?.lastConnectFailure ?? "unknown";
        reasons.push(`no pool can reach its server (last failure: ${failure})`);
      }
    }
    return { ready: reasons.length === 0, reasons };
  }

  /** The engine's trace registry, once the pooler keeps one (`readonly tracer = new Tracer(this.clients)`). */
  tracer(): Tracer | null {
    return (this.pooler as Pooler & { readonly tracer?: Tracer }).tracer ?? null;
  }

  private controlAllowed(request: FastifyRequest): "ok" | "control_disabled" | "unauthorized" {
    if (this.tokenDigest === null) return "control_disabled";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
    if (m === null) return "unauthorized";
    // Both sides hashed: equal lengths for timingSafeEqual, and the compare takes the same time either way.
    return timingSafeEqual(sha256(m[1]!), this.tokenDigest) ? "ok" : "unauthorized";
  }

  private routes(): void {
    const app = this.app;

    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
      const text = typeof body === "string" ? body : body.toString("utf8");
      if (text.trim() === "") {
        done(null, undefined);
        return;
      }
      try {
        done(null, JSON.parse(text));
      } catch {
        const err = new Error("the body is not valid JSON") as Error & { statusCode: number };
        err.statusCode = 400;
        done(err, undefined);
      }
    });

    app.setNotFoundHandler((request, reply) => {
      sendError(reply, "not_found", `no such endpoint: ${request.method} ${request.url.split("?")[0]}`);
    });
    app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
      const status = err.statusCode ?? 500;
      if (status >= 400 && status < 500) {
        reply
          .code(status)
          .type("application/json")
          .send({ error: { code: "bad_request", message: err.message } });
        return;
      }
      request.log.error({ err }, "admin request failed");
      sendError(reply, "internal");
    });

    // ---- probes ----
    app.get("/livez", async () => ({ status: "ok" }));
    app.get("/healthz", async () => ({ status: "ok" }));
    app.get("/readyz", async (_request, reply) => {
      const r = this.readiness();
      return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? "ready" : "not ready", reasons: r.reasons });
    });
    app.get("/startupz", async (_request, reply) => {
      const started = this.pooler.addresses.length > 0;
      return reply.code(started ? 200 : 503).send({ status: started ? "started" : "starting" });
    });

    // ---- metrics ----
    app.get("/metrics", async (_request, reply) => {
      this.scrape.begin();
      const text = await this.registry.metrics();
      return reply.type(this.registry.contentType).send(text);
    });

    // ---- JSON API ----
    app.get("/v1/overview", async () => {
      const tracer = this.tracer();
      return {
        version: this.version,
        pgbouncerCompatVersion: PGBOUNCER_COMPAT_VERSION,
        consoleVersion: consoleVersionString(),
        startedAt: new Date(this.startedAt).toISOString(),
        uptimeSeconds: (Date.now() - this.startedAt) / 1000,
        readiness: this.readiness(),
        paused: this.control.isPaused(),
        draining: this.draining,
        controlEnabled: this.tokenDigest !== null,
        listen: this.pooler.addresses,
        totals: poolerTotals(this.pooler),
        clientStates: clientStateCounts(this.pooler),
        errors: errorCounts(this.pooler),
        pins: pinTotals(this.pooler),
        preparedStatements: preparedStatementTotals(this.pooler),
        trace:
          tracer === null
            ? { available: false }
            : {
                available: true,
                subscriptions: tracer.subscriptionCount,
                chunksRecorded: tracer.chunksRecorded,
                linesDropped: tracer.linesDropped,
              },
      };
    });
    app.get("/v1/pools", async () => ({ pools: snapshotPools(this.pooler) }));
    app.get("/v1/clients", async () => ({ clients: snapshotClients(this.pooler) }));
    app.get("/v1/servers", async () => ({ servers: snapshotServers(this.pooler) }));
    app.get("/v1/config", async () => configView(this.config, this.pooler.settings));

    // ---- control actions ----
    const guarded = (
      path: string,
      handler: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>,
    ): void => {
      app.post(path, async (request, reply) => {
        const allowed = this.controlAllowed(request);
        if (allowed === "unauthorized") reply.header("www-authenticate", 'Bearer realm="pgmux"');
        if (allowed !== "ok") return sendError(reply, allowed);
        return handler(request, reply);
      });
    };
    const simple = (name: string, run: () => Promise<void>) =>
      guarded(`/v1/${name}`, async (request, reply) => {
        const body = EmptyBody.safeParse(request.body);
        if (!body.success) return sendError(reply, "bad_request", zodMessage(body.error));
        return this.act(reply, name, async () => {
          await run();
          return {};
        });
      });
    simple("pause", () => this.control.pause());
    simple("resume", () => this.control.resume());
    simple("reconnect", () => this.control.reconnect());
    simple("reload", () => this.control.reload());
    guarded("/v1/kill-client/:id", async (request, reply) => {
      const params = ClientIdParams.safeParse(request.params);
      if (!params.success) return sendError(reply, "bad_request", zodMessage(params.error));
      const body = EmptyBody.safeParse(request.body);
      if (!body.success) return sendError(reply, "bad_request", zodMessage(body.error));
      const id = params.data.id;
      return this.act(reply, "kill-client", async () => {
        if (!(await this.control.killClient(id))) return null;
        return { client: id };
      });
    });
    app.get("/v1/log-level", async (_request, reply) => {
      if (this.logLevel === null) return sendError(reply, "not_implemented", "this pgmux has no adjustable log level");
      return { level: this.logLevel.get() };
    });
    guarded("/v1/log-level", async (request, reply) => {
      if (this.logLevel === null) return sendError(reply, "not_implemented", "this pgmux has no adjustable log level");
      const body = LogLevelBody.safeParse(request.body);
      if (!body.success) return sendError(reply, "bad_request", zodMessage(body.error));
      const previous = this.logLevel.get();
      if (!this.logLevel.set(body.data.level)) {
        return sendError(
          reply,
          "bad_request",
          `${JSON.stringify(body.data.level.slice(0, 20))} is not a log level (one of fatal, error, warn, info, debug, trace, silent)`,
        );
      }
      return reply.send({ ok: true, action: "log-level", level: this.logLevel.get(), previous });
    });
    guarded("/v1/shutdown", async (request, reply) => {
      const body = ShutdownBody.safeParse(request.body);
      if (!body.success) return sendError(reply, "bad_request", zodMessage(body.error));
      const mode: ShutdownMode = body.data?.mode ?? "immediate";
      this.draining = true;
      const log = request.log;
      // Answered first: the pooler may close connections (and this one's process) as it goes down.
      reply.send({ ok: true, action: "shutdown", mode });
      setImmediate(() => {
        this.control.shutdown(mode).catch((err: unknown) => log.error({ err }, "shutdown failed"));
      });
      return reply;
    });

    // ---- live trace ----
    const openTrace = (kind: "sse" | "text") => async (request: FastifyRequest, reply: FastifyReply) => {
      const q = TraceQuerySchema.safeParse(request.query);
      if (!q.success) return sendError(reply, "bad_request", zodMessage(q.error));
      const req = traceRequest(q.data);
      if (req.reveal) {
        const allowed = this.controlAllowed(request);
        if (allowed === "control_disabled") return sendError(reply, "reveal_needs_token");
        if (allowed === "unauthorized") return sendError(reply, "unauthorized");
      }
      const tracer = this.tracer();
      if (tracer === null) {
        return sendError(
          reply,
          "not_implemented",
          "the live trace is not available: this pgmux engine keeps no Pooler.tracer yet (see docs/admin.md)",
        );
      }
      let stream: TraceStream;
      try {
        reply.hijack();
        stream = new TraceStream(tracer, req, reply.raw, kind, (s) => this.streams.delete(s));
      } catch (err) {
        if (err instanceof TraceLimitError) {
          reply.raw.writeHead(429, { "content-type": "application/json" });
          reply.raw.end(JSON.stringify(errorBody("too_many_traces", err.message)));
          return reply;
        }
        throw err;
      }
      this.streams.add(stream);
      return reply;
    };
    app.get("/v1/trace", openTrace("sse"));
    app.get("/v1/trace.txt", openTrace("text"));

    // ---- dashboard ----
    app.get("/", async (_request, reply) => reply.type("text/html; charset=utf-8").send(DASHBOARD_HTML));
    app.get("/dashboard.js", async (_request, reply) =>
      reply.type("text/javascript; charset=utf-8").header("cache-control", "no-cache").send(DASHBOARD_JS),
    );
  }

  /** Runs a control action and answers: 200 with what it did, 404 for a missing client, 409, or 501. */
  private async act(
    reply: FastifyReply,
    action: string,
    run: () => Promise<Record<string, unknown> | null>,
  ): Promise<FastifyReply> {
    try {
      const result = await run();
      if (result === null) return sendError(reply, "client_not_found");
      return reply.send({ ok: true, action, ...result });
    } catch (err) {
      if (err instanceof ControlUnavailableError) return sendError(reply, "not_implemented", err.message);
      if (err instanceof ControlStateError) return sendError(reply, "conflict", err.message);
      throw err;
    }
  }
}
