/**
 * A child process that opens client connections for the scale measurements (forked by client-workers.ts,
 * driven over IPC): holds logged-in idle clients, checks that held clients still answer, or measures how
 * many logins per second a target accepts. Several of them spread the client side's own work (SCRAM, TCP)
 * over the cores, and each stays within its own heap.
 */
import type { Socket } from "node:net";
import { BackendMessageType, encodeQuery, encodeTerminate, FrameReader } from "@pgmux/protocol";
import { type LoginTarget, login, ScramKeyCache } from "./raw-client.js";

export interface OpenCommand {
  readonly op: "open" | "rate";
  readonly target: LoginTarget;
  readonly count: number;
  readonly concurrency: number;
  /** Source addresses (127.x.y.z), each used for at most `perAddress` connections: a fresh range of ports. */
  readonly localAddresses: readonly string[];
  readonly perAddress: number;
}

export type WorkerCommand = OpenCommand | { readonly op: "check"; readonly sample: number } | { readonly op: "close" };

export interface OpenReply {
  readonly op: "opened" | "rated";
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly derivations: number;
  readonly errors: readonly string[];
  readonly held: number;
}

export interface CheckReply {
  readonly op: "checked";
  readonly ok: number;
  readonly failed: number;
  /** Held clients whose connection the server side closed. */
  readonly dropped: number;
  readonly held: number;
}

export type WorkerReply =
  | OpenReply
  | CheckReply
  | { readonly op: "closed" }
  | { readonly op: "error"; message: string };

const TERMINATE = encodeTerminate();
const SELECT_1 = encodeQuery({ query: "SELECT 1" });
const held = new Set<Socket>();
let dropped = 0;
let keyCache: ScramKeyCache | null = null;

function send(reply: WorkerReply): void {
  process.send?.(reply);
}

async function open(command: OpenCommand): Promise<OpenReply> {
  if (keyCache === null) keyCache = new ScramKeyCache(command.target.password);
  const keys = keyCache;
  const derivationsBefore = keys.derivations;
  const errors: string[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  const loop = async () => {
    while (next < command.count) {
      const index = next++;
      const localAddress = command.localAddresses[Math.floor(index / command.perAddress)];
      try {
        const socket = await login(command.target, keys, localAddress ? { localAddress } : {});
        ok++;
        if (command.op === "rate") {
          socket.on("error", () => {});
          socket.end(TERMINATE);
        } else {
          hold(socket);
        }
      } catch (error) {
        failed++;
        if (errors.length < 5) errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.count) }, loop));
  return {
    op: command.op === "rate" ? "rated" : "opened",
    ok,
    failed,
    seconds: (performance.now() - started) / 1000,
    derivations: keys.derivations - derivationsBefore,
    errors,
    held: held.size,
  };
}

function hold(socket: Socket): void {
  held.add(socket);
  socket.on("error", () => {});
  socket.once("close", () => {
    if (held.delete(socket)) dropped++;
  });
}

/** Runs SELECT 1 on up to `sample` held clients, spread over the set. */
async function check(sample: number): Promise<CheckReply> {
  const sockets = [...held];
  const step = Math.max(1, Math.floor(sockets.length / Math.max(1, sample)));
  const picked: Socket[] = [];
  for (let i = 0; i < sockets.length && picked.length < sample; i += step) picked.push(sockets[i]!);
  const results = await Promise.all(picked.map((s) => query(s)));
  const ok = results.filter(Boolean).length;
  return { op: "checked", ok, failed: results.length - ok, dropped, held: held.size };
}

function query(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(ok);
    };
    let errored = false;
    const reader = new FrameReader(
      (type) => {
        if (type === BackendMessageType.ErrorResponse) errored = true;
        if (type === BackendMessageType.ReadyForQuery) finish(!errored);
      },
      { maxMessageBytes: 1 << 20 },
    );
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch {
        finish(false);
      }
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), 60_000);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.write(SELECT_1);
  });
}

function closeAll(): void {
  for (const socket of held) {
    held.delete(socket);
    socket.end(TERMINATE);
  }
}

process.on("message", (command: WorkerCommand) => {
  const run = async (): Promise<WorkerReply> => {
    switch (command.op) {
      case "open":
      case "rate":
        return open(command);
      case "check":
        return check(command.sample);
      case "close":
        closeAll();
        return { op: "closed" };
    }
  };
  run().then(send, (error: unknown) =>
    send({ op: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
// The parent went away: nothing left to measure for.
process.on("disconnect", () => {
  closeAll();
  process.exit(0);
});
