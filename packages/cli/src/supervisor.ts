import { type ChildProcess, fork } from "node:child_process";
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError, type PgmuxConfig } from "@pgmux/core";
import type { Logger } from "pino";
import { loadEffectiveConfig } from "./effective-config.js";
import { mergeMetrics } from "./metrics-merge.js";

/** Messages between the supervisor and its workers (over the fork IPC channel). */
export type WorkerMessage =
  | { type: "started"; adminUrl: string; listen: string[] }
  | { type: "cancel"; pid: number; key: string };

export interface SupervisorOptions {
  readonly count: number;
  readonly mainPath: string;
  /** The command line pgmux was started with; each worker gets it plus `--worker i/N`. */
  readonly argv: readonly string[];
  readonly file: string | undefined;
  readonly set: readonly string[];
  readonly config: PgmuxConfig;
  readonly log: Logger;
  /** POST /v1/shutdown: the supervisor itself goes down (graceful: SIGTERM to the workers; immediate: SIGQUIT). */
  readonly requestShutdown: (mode: "graceful" | "immediate") => void;
}

interface Worker {
  readonly index: number;
  child: ChildProcess | null;
  adminUrl: string | null;
  listen: string[];
}

/** Arrays in these GET answers are merged across workers, each element tagged with its worker. */
const MERGED_LISTS = new Set(["/v1/pools", "/v1/clients", "/v1/servers"]);

/**
 * `workers: N`: N pgmux processes share the client port (each binds it with SO_REUSEPORT and the kernel
 * spreads connections among them), each with its own pools holding its share of the pool sizes and limits.
 * This process supervises them:
 * - it forks them, restarts one that dies, and relays signals (SIGHUP after checking the configuration
 *   itself, SIGTERM/SIGINT/SIGQUIT, SIGUSR1/SIGUSR2);
 * - it routes cancel requests: a worker's cancel keys are ≡ its index (mod N), and a worker that receives
 *   a cancel for another's key sends it here, to be handed to the owner;
 * - it serves the admin address: /metrics adds up the workers' metrics, /readyz is ready when every
 *   worker is, GET /v1/pools|clients|servers merge the workers' lists, control actions (POST) go to every
 *   worker, anything else (the dashboard, the trace) is worker 0's.
 */
export class Supervisor {
  private readonly workers: Worker[] = [];
  private server: Server | null = null;
  private stopping = false;
  private readonly exited: Promise<void>[] = [];
  private config: PgmuxConfig;

  constructor(private readonly options: SupervisorOptions) {
    this.config = options.config;
    for (let i = 0; i < options.count; i++) this.workers.push({ index: i, child: null, adminUrl: null, listen: [] });
  }

  async start(): Promise<string> {
    for (const w of this.workers) this.spawn(w);
    const deadline = Date.now() + 30_000;
    while (this.workers.some((w) => w.adminUrl === null)) {
      if (Date.now() > deadline) throw new Error("the workers did not start within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const g = this.config.pgmux;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.options.log.error({ err }, "admin request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "internal", message: "internal error" } }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen({ host: g.admin_listen_addr, port: g.admin_listen_port }, () => resolve());
    });
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Where clients connect (worker 0's listeners: every worker binds the same). */
  get listen(): string[] {
    return this.workers[0]?.listen ?? [];
  }

  private spawn(w: Worker): void {
    // Its own process group: a Ctrl-C at the terminal reaches the supervisor only, which relays it once.
    const child = fork(this.options.mainPath, [...this.options.argv, "--worker", `${w.index}/${this.options.count}`], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      detached: true,
    });
    w.child = child;
    w.adminUrl = null;
    child.on("message", (m: WorkerMessage) => this.onMessage(w, m));
    this.exited[w.index] = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        w.child = null;
        w.adminUrl = null;
        resolve();
        if (this.stopping) return;
        this.options.log.error(
          { worker: w.index, code, signal, reason: "worker exited" },
          "worker exited; restarting it",
        );
        setTimeout(() => {
          if (!this.stopping) this.spawn(w);
        }, 1000).unref();
      });
    });
  }

  private onMessage(w: Worker, m: WorkerMessage): void {
    if (m.type === "started") {
      w.adminUrl = m.adminUrl;
      w.listen = m.listen;
    } else if (m.type === "cancel") {
      const owner = this.workers[m.pid % this.options.count];
      owner?.child?.send(m);
    }
  }

  /** Sends a signal to every running worker. */
  signalAll(signal: NodeJS.Signals): void {
    for (const w of this.workers) if (w.child?.pid !== undefined) w.child.kill(signal);
  }

  /** SIGHUP: the configuration is checked here first, so an invalid one is reported once and no worker is bothered. */
  reload(trigger: string): boolean {
    try {
      this.config = loadEffectiveConfig(this.options.file, process.env, this.options.set).loaded.config;
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map((p) => p.text) : [(err as Error).message];
      this.options.log.error({ trigger, problems }, "configuration rejected; the one in force stays");
      return false;
    }
    this.signalAll("SIGHUP");
    return true;
  }

  /** Relays a shutdown signal and resolves once every worker has exited. */
  async shutdown(signal: NodeJS.Signals): Promise<void> {
    this.stopping = true;
    this.signalAll(signal);
    await Promise.all(this.exited);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server === null ? resolve() : this.server.close(() => resolve())));
  }

  /** POST /v1/shutdown: checked against admin_api_token here (as a worker would), carried out here. */
  private shutdownRequest(req: IncomingMessage, body: Buffer, json: (status: number, body: unknown) => void): void {
    const token = this.config.pgmux.admin_api_token;
    if (token === undefined || token === "") {
      json(403, { error: { code: "control_disabled", message: "control actions need admin_api_token" } });
      return;
    }
    const given = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
    const digest = (t: string) => createHash("sha256").update(t).digest();
    if (!timingSafeEqual(digest(given), digest(token))) {
      res401(json);
      return;
    }
    let mode: "graceful" | "immediate" = "immediate";
    try {
      const parsed = body.length === 0 ? {} : (JSON.parse(body.toString("utf8")) as { mode?: unknown });
      if (parsed.mode === "graceful") mode = "graceful";
      else if (parsed.mode !== undefined && parsed.mode !== "immediate") throw new Error("mode");
    } catch {
      json(400, { error: { code: "bad_request", message: 'the body is {"mode":"graceful"} or {"mode":"immediate"}' } });
      return;
    }
    json(200, { ok: true, action: "shutdown", mode });
    setImmediate(() => this.options.requestShutdown(mode));
  }

  private async fetchWorker(w: Worker, path: string, init?: RequestInit): Promise<Response | null> {
    if (w.adminUrl === null) return null;
    try {
      return await fetch(`${w.adminUrl}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
    } catch {
      return null;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && (path === "/livez" || path === "/healthz")) return json(200, { status: "ok" });
    if (req.method === "GET" && path === "/startupz") {
      const started = this.workers.every((w) => w.adminUrl !== null);
      return json(started ? 200 : 503, { status: started ? "started" : "starting" });
    }
    if (req.method === "GET" && path === "/readyz") {
      if (this.stopping) return json(503, { status: "not ready", reasons: ["pgmux is shutting down"] });
      const answers = await Promise.all(this.workers.map((w) => this.fetchWorker(w, "/readyz")));
      const reasons: string[] = [];
      for (const [i, r] of answers.entries()) {
        if (r === null) reasons.push(`worker ${i} is not answering`);
        else if (r.status !== 200) {
          const body = (await r.json().catch(() => ({}))) as { reasons?: string[] };
          reasons.push(...(body.reasons ?? ["not ready"]).map((x) => `worker ${i}: ${x}`));
        } else await r.arrayBuffer();
      }
      return json(reasons.length === 0 ? 200 : 503, { status: reasons.length === 0 ? "ready" : "not ready", reasons });
    }
    if (req.method === "GET" && path === "/metrics") {
      const answers = await Promise.all(this.workers.map((w) => this.fetchWorker(w, "/metrics")));
      const texts = await Promise.all(answers.map((r) => (r === null ? "" : r.text())));
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(mergeMetrics(texts));
      return;
    }
    if (req.method === "GET" && path.startsWith("/v1/") && path !== "/v1/trace" && path !== "/v1/trace.txt") {
      const answers = await Promise.all(this.workers.map((w) => this.fetchWorker(w, path + url.search)));
      const bodies = await Promise.all(answers.map((r) => (r === null ? null : (r.json() as Promise<unknown>))));
      if (MERGED_LISTS.has(path)) {
        const key = path.slice("/v1/".length);
        const merged: unknown[] = [];
        bodies.forEach((b, worker) => {
          const list = (b as Record<string, unknown[]> | null)?.[key] ?? [];
          for (const item of list) merged.push({ worker, ...(item as object) });
        });
        return json(200, { [key]: merged });
      }
      return json(200, { workers: bodies.map((b, worker) => ({ worker, ...(b as object) })) });
    }
    if (req.method === "POST" && path.startsWith("/v1/")) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      if (path === "/v1/shutdown") return this.shutdownRequest(req, body, json);
      const headers: Record<string, string> = {};
      if (req.headers.authorization !== undefined) headers.authorization = req.headers.authorization;
      if (req.headers["content-type"] !== undefined) headers["content-type"] = req.headers["content-type"];
      const answers = await Promise.all(
        this.workers.map((w) =>
          this.fetchWorker(w, path, { method: "POST", headers, ...(body.length > 0 ? { body } : {}) }),
        ),
      );
      const results = await Promise.all(
        answers.map(async (r) => (r === null ? null : { status: r.status, body: await r.json().catch(() => null) })),
      );
      const failed = results.find((r) => r === null || r.status >= 300);
      if (failed !== undefined) {
        if (failed === null) return json(503, { error: { code: "unavailable", message: "a worker is not answering" } });
        return json(failed.status, failed.body);
      }
      return json(200, { ok: true, workers: results.map((r, worker) => ({ worker, ...(r!.body as object) })) });
    }
    // The dashboard and the live trace: worker 0's.
    const r = await this.fetchWorker(this.workers[0]!, path + url.search, { method: req.method ?? "GET" });
    if (r === null) return json(503, { error: { code: "unavailable", message: "worker 0 is not answering" } });
    res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/octet-stream" });
    res.end(Buffer.from(await r.arrayBuffer()));
  }
}

function res401(json: (status: number, body: unknown) => void): void {
  json(401, { error: { code: "unauthorized", message: "a valid Authorization: Bearer <admin_api_token> is needed" } });
}
