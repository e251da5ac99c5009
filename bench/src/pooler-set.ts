/**
 * The running pgbouncer and pgmux of one ini pair, by kind: started together, restarted alone when one
 * died (the benchmark records the death and goes on), stopped together.
 */
import type { ChildProcesses } from "./child-processes.js";
import type { PoolerIniPair, PoolerKind } from "./pooler-config.js";
import {
  isRunning,
  outputTail,
  type PoolerProcess,
  pgmuxBuild,
  type StartPoolerOptions,
  startPooler,
  stopPooler,
} from "./poolers.js";

export interface PoolerDeath {
  readonly kind: PoolerKind;
  readonly exit: string;
  readonly outputTail: string;
  /** What was running when it died. */
  readonly during: string;
}

export class PoolerSet {
  readonly #running = new Map<PoolerKind, PoolerProcess>();
  readonly deaths: PoolerDeath[] = [];
  /** The pgmux build (newest dist file time) each pgmux start loaded, in order. */
  readonly pgmuxBuilds: string[] = [];

  constructor(
    private readonly children: ChildProcesses,
    readonly inis: PoolerIniPair,
    private readonly options: StartPoolerOptions,
    readonly kinds: readonly PoolerKind[] = ["pgbouncer", "pgmux"],
  ) {}

  async start(): Promise<void> {
    for (const kind of this.kinds) await this.#start(kind);
  }

  get(kind: PoolerKind): PoolerProcess {
    const p = this.#running.get(kind);
    if (p === undefined) throw new Error(`${kind} is not running`);
    return p;
  }

  /** When `kind` died since the last look: records it, restarts it, and returns the death. */
  async checkAlive(kind: PoolerKind, during: string): Promise<PoolerDeath | undefined> {
    const p = this.#running.get(kind);
    if (p === undefined || isRunning(p)) return undefined;
    const death: PoolerDeath = {
      kind,
      exit: `code ${p.child.exitCode}, signal ${p.child.signalCode}`,
      outputTail: outputTail(p),
      during,
    };
    this.deaths.push(death);
    await this.#start(kind);
    return death;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#running.values()].map((p) => stopPooler(this.children, p)));
    this.#running.clear();
  }

  async #start(kind: PoolerKind): Promise<void> {
    if (kind === "pgmux") this.pgmuxBuilds.push(pgmuxBuild());
    this.#running.set(kind, await startPooler(this.children, this.inis[kind], this.options));
  }
}
