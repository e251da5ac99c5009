import type { Pooler } from "@pgmux/core";
import type { Logger } from "pino";

export interface ShutdownOptions {
  readonly pooler: Pooler;
  readonly log: Logger;
  /** Marks pgmux as not ready (/readyz 503) at once; /metrics keeps answering. */
  readonly notReady: () => void;
  /** shutdown_delay and shutdown_timeout in force when the signal comes (they are reloadable). */
  readonly timing: () => { delayMs: number; timeoutMs: number };
  /** Runs last: closes the admin server, the file watcher. */
  readonly finish: () => Promise<void>;
}

/**
 * How pgmux goes down.
 * - graceful (SIGTERM): not ready at once; clients are still served for shutdown_delay (while load
 *   balancers and Kubernetes endpoints stop sending new ones); then new clients are refused and each
 *   client is closed at its next transaction boundary (57P01); pgmux exits when all have gone, or at
 *   shutdown_timeout, when what still runs is cancelled.
 * - SIGINT: the same without the delay (a person at a terminal).
 * - immediate (SIGQUIT, or a second SIGTERM or SIGINT): every client and server is closed now.
 */
export class Shutdown {
  private stopping: Promise<void> | null = null;
  private immediateRequested = false;
  private wakeDelay: (() => void) | null = null;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly options: ShutdownOptions) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** Installs the signal handlers. */
  listen(): void {
    process.on("SIGTERM", () => this.signal("SIGTERM", true));
    process.on("SIGINT", () => this.signal("SIGINT", false));
    process.on("SIGQUIT", () => this.immediate("SIGQUIT"));
  }

  private signal(name: string, withDelay: boolean): void {
    if (this.stopping !== null) this.immediate(`second ${name}`);
    else void this.graceful(name, withDelay);
  }

  /** A graceful shutdown (idempotent: a second call returns the first one's promise). */
  graceful(reason: string, withDelay: boolean): Promise<void> {
    this.stopping ??= this.runGraceful(reason, withDelay);
    return this.stopping;
  }

  /** Stop now: every client and server closed without waiting for a boundary. */
  immediate(reason: string): Promise<void> {
    if (this.immediateRequested) return this.stopping ?? Promise.resolve();
    this.immediateRequested = true;
    this.options.log.warn({ reason }, "stopping now: every client and server is closed");
    this.options.notReady();
    this.wakeDelay?.();
    const run = (async () => {
      await this.options.pooler.stop().catch(() => {});
      await this.finishOnce();
    })();
    this.stopping ??= run;
    return run;
  }

  private async runGraceful(reason: string, withDelay: boolean): Promise<void> {
    const { pooler, log } = this.options;
    const { delayMs, timeoutMs } = this.options.timing();
    this.options.notReady();
    log.info(
      { reason, shutdownDelaySeconds: withDelay ? delayMs / 1000 : 0, shutdownTimeoutSeconds: timeoutMs / 1000 },
      "shutting down gracefully: not ready from now on",
    );
    if (withDelay && delayMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wakeDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeDelay = null;
    }
    if (this.immediateRequested) return;
    await pooler.drain({ timeoutMs });
    if (this.immediateRequested) return;
    await pooler.stop().catch(() => {});
    await this.finishOnce();
  }

  private finished = false;
  private async finishOnce(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.options.finish().catch(() => {});
    this.options.log.info("pgmux stopped");
    this.resolveDone();
  }
}
