/**
 * Every process the benchmark starts goes through here, so that all of them stop when it ends: stop() for
 * the orderly path, and a synchronous SIGKILL of whatever is left when the process exits, throws or gets
 * SIGINT/SIGTERM/SIGHUP (the test harness's cleanupOnExit, which also stops the PostgreSQL cluster).
 */
import { type ChildProcess, type ForkOptions, fork, type SpawnOptions, spawn } from "node:child_process";
import { cleanupOnExit } from "@pgmux/test/support";

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class ChildProcesses {
  readonly #running = new Map<ChildProcess, Promise<Exit>>();
  readonly #unregister: () => void;

  constructor() {
    this.#unregister = cleanupOnExit(() => this.killAllSync());
  }

  spawn(file: string, args: readonly string[], options: SpawnOptions): ChildProcess {
    return this.#track(spawn(file, args, options));
  }

  fork(modulePath: string, args: readonly string[], options: ForkOptions): ChildProcess {
    return this.#track(fork(modulePath, args, options));
  }

  /** Resolves when the child has exited (at once if it already has). */
  exited(child: ChildProcess): Promise<Exit> {
    return this.#running.get(child) ?? Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }

  /** `signal`, then SIGKILL if the child is still there after `timeoutMs`. */
  async stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<Exit> {
    const exited = this.exited(child);
    if (!this.#running.has(child)) return exited;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (killed) child.kill("SIGKILL");
    return exited;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#running.keys()].map((child) => this.stop(child)));
  }

  killAllSync(): void {
    for (const child of this.#running.keys()) {
      if (child.pid === undefined) continue;
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }

  /** After stopAll(): nothing left to kill at exit. */
  dispose(): void {
    this.#unregister();
  }

  #track(child: ChildProcess): ChildProcess {
    const exited = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => {
        this.#running.delete(child);
        resolve({ code, signal });
      });
      child.once("error", () => {
        // A spawn failure ('error' without 'exit'): nothing runs, nothing to stop.
        if (child.pid === undefined) {
          this.#running.delete(child);
          resolve({ code: null, signal: null });
        }
      });
    });
    this.#running.set(child, exited);
    return child;
  }
}
