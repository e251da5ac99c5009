/**
 * The parent's side of the client workers (client-worker.ts): splits each job between them, sends it over
 * IPC, and adds up their replies.
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildProcesses } from "./child-processes.js";
import type { CheckReply, OpenReply, WorkerCommand, WorkerReply } from "./client-worker.js";
import { CONNECTIONS_PER_ADDRESS, type LocalAddresses } from "./local-addresses.js";
import type { LoginTarget } from "./raw-client.js";

const WORKER = fileURLToPath(new URL("./client-worker.js", import.meta.url));

export interface OpenTotals {
  readonly ok: number;
  readonly failed: number;
  /** Wall time of the slowest worker: all start together, so this is the job's duration. */
  readonly seconds: number;
  readonly derivations: number;
  readonly errors: readonly string[];
  readonly held: number;
}

export interface CheckTotals {
  readonly ok: number;
  readonly failed: number;
  readonly dropped: number;
  readonly held: number;
}

export class ClientWorkers {
  private constructor(
    private readonly children: ChildProcesses,
    private readonly workers: readonly ChildProcess[],
  ) {}

  static start(children: ChildProcesses, count: number): ClientWorkers {
    const workers = Array.from({ length: count }, () =>
      children.fork(WORKER, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] }),
    );
    return new ClientWorkers(children, workers);
  }

  /** Opens `count` logged-in clients (split between the workers) and keeps them open. */
  open(target: LoginTarget, count: number, concurrency: number, addresses: LocalAddresses | null): Promise<OpenTotals> {
    return this.#openOrRate("open", target, count, concurrency, addresses);
  }

  /**
   * Logs in `count` times, closing each client at once; the rate is ok / seconds. `addresses` null: connect
   * from the default source address (a server whose pg_hba.conf admits only 127.0.0.1).
   */
  rate(target: LoginTarget, count: number, concurrency: number, addresses: LocalAddresses | null): Promise<OpenTotals> {
    return this.#openOrRate("rate", target, count, concurrency, addresses);
  }

  async check(samplePerWorker: number): Promise<CheckTotals> {
    const replies = (await Promise.all(
      this.workers.map((w) => this.#ask(w, { op: "check", sample: samplePerWorker })),
    )) as CheckReply[];
    return {
      ok: sum(replies.map((r) => r.ok)),
      failed: sum(replies.map((r) => r.failed)),
      dropped: sum(replies.map((r) => r.dropped)),
      held: sum(replies.map((r) => r.held)),
    };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.#ask(w, { op: "close" })));
  }

  async stop(): Promise<void> {
    for (const w of this.workers) if (w.connected) w.disconnect();
    await Promise.all(this.workers.map((w) => this.children.stop(w, "SIGTERM", 5_000)));
  }

  async #openOrRate(
    op: "open" | "rate",
    target: LoginTarget,
    count: number,
    concurrency: number,
    addresses: LocalAddresses | null,
  ): Promise<OpenTotals> {
    const shares = split(count, this.workers.length);
    const replies = (await Promise.all(
      this.workers.map((w, i) => {
        const share = shares[i]!;
        const command: WorkerCommand = {
          op,
          target,
          count: share,
          concurrency: Math.max(1, Math.ceil(concurrency / this.workers.length)),
          localAddresses: addresses?.takeFor(share) ?? [],
          perAddress: CONNECTIONS_PER_ADDRESS,
        };
        return share > 0 ? this.#ask(w, command) : Promise.resolve(emptyReply(op));
      }),
    )) as OpenReply[];
    const errors = replies.flatMap((r) => r.errors);
    return {
      ok: sum(replies.map((r) => r.ok)),
      failed: sum(replies.map((r) => r.failed)),
      seconds: Math.max(...replies.map((r) => r.seconds)),
      derivations: sum(replies.map((r) => r.derivations)),
      errors: [...new Set(errors)].slice(0, 5),
      held: sum(replies.map((r) => r.held)),
    };
  }

  #ask(worker: ChildProcess, command: WorkerCommand): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: WorkerReply) => {
        cleanup();
        if (reply.op === "error") reject(new Error(`client worker failed: ${reply.message}`));
        else resolve(reply);
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        reject(new Error(`client worker exited (${signal ?? code}) during ${command.op}`));
      };
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.send(command);
    });
  }
}

function emptyReply(op: "open" | "rate"): OpenReply {
  return { op: op === "rate" ? "rated" : "opened", ok: 0, failed: 0, seconds: 0, derivations: 0, errors: [], held: 0 };
}

function split(count: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(count / parts) + (i < count % parts ? 1 : 0));
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
