import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { waitUntil } from "./wait-until.js";

const MAIN = fileURLToPath(new URL("../../packages/cli/dist/main.js", import.meta.url));

export interface PgmuxProcessOptions {
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** How long start-up may take (default 15 s). */
  readonly startTimeoutMs?: number;
}

/** One JSON log line of pgmux. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/**
 * The `pgmux` binary (packages/cli/dist/main.js) as its own process, the way an operator runs it: its JSON
 * logs collected line by line, its banner read for the admin URL, signals sent to its pid only.
 */
export class PgmuxProcess {
  readonly child: ChildProcess;
  output = "";
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  private partial = "";

  private constructor(options: PgmuxProcessOptions) {
    this.child = spawn(process.execPath, [MAIN, ...options.args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env },
    });
    const take = (d: Buffer) => {
      const text = d.toString();
      this.output += text;
      this.partial += text;
      const parts = this.partial.split("\n");
      this.partial = parts.pop()!;
      for (const p of parts) {
        if (!p.startsWith("{")) continue;
        try {
          this.lines.push(JSON.parse(p) as LogLine);
        } catch {}
      }
    };
    this.child.stdout!.on("data", take);
    this.child.stderr!.on("data", take);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() }));
    });
  }

  static async start(options: PgmuxProcessOptions): Promise<PgmuxProcess> {
    const p = new PgmuxProcess(options);
    await waitUntil("pgmux to start", () => p.find("pgmux started") !== undefined || p.child.exitCode !== null, {
      timeoutMs: options.startTimeoutMs ?? 15_000,
      detail: () => p.output,
    });
    if (p.child.exitCode !== null) throw new Error(`pgmux exited at start-up:\n${p.output}`);
    return p;
  }

  /** The first log line with this message (and matching fields), if any. */
  find(msg: string, where: (l: LogLine) => boolean = () => true): LogLine | undefined {
    return this.lines.find((l) => l.msg === msg && where(l));
  }

  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }

  async waitForLog(msg: string, timeoutMs = 10_000, where: (l: LogLine) => boolean = () => true): Promise<LogLine> {
    await waitUntil(`pgmux to log "${msg}"`, () => this.find(msg, where) !== undefined, {
      timeoutMs,
      detail: () => this.output.slice(-4000),
    });
    return this.find(msg, where)!;
  }

  /** The admin server's URL, from the banner. */
  get adminUrl(): string {
    return String(this.find("pgmux started")?.admin);
  }

  signal(name: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.pid !== undefined) process.kill(this.child.pid, name);
  }

  /** SIGKILL if still running, and wait for the exit (test clean-up). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.signal("SIGKILL");
      await this.exited;
    }
  }
}
