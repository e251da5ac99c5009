import { connect, createServer, type Server, type Socket } from "node:net";
import { waitUntil } from "./wait-until.js";

/** "frontend": client → server bytes; "backend": server → client bytes (the PostgreSQL docs' terms). */
export type RelayDirection = "frontend" | "backend";

export interface RecordedChunk {
  readonly direction: RelayDirection;
  /** A copy of the bytes exactly as one 'data' event delivered them. */
  readonly bytes: Buffer;
}

export interface RecordedConnection {
  readonly id: number;
  /** Both directions in arrival order. */
  readonly chunks: RecordedChunk[];
  /** True once both sockets have closed. */
  closed: boolean;
}

export interface RelayTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * A TCP relay on 127.0.0.1 that forwards every connection to `target` unchanged and records each chunk of
 * both directions. Used to capture golden bytes from real clients and servers, and by tests that need to see
 * what went over the wire. Forwarding honours backpressure, so large results pass in bounded memory apart
 * from the recording itself.
 */
export class RecordingRelay {
  readonly host = "127.0.0.1";
  readonly #server: Server;
  readonly #target: RelayTarget;
  readonly #connections: RecordedConnection[] = [];
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(server: Server, target: RelayTarget) {
    this.#server = server;
    this.#target = target;
  }

  static async start(target: RelayTarget): Promise<RecordingRelay> {
    const server = createServer({ noDelay: true });
    const relay = new RecordingRelay(server, target);
    server.on("connection", (socket) => relay.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: relay.host, port: 0 }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the relay has no TCP address");
    relay.#port = address.port;
    return relay;
  }

  get port(): number {
    return this.#port;
  }

  get connections(): readonly RecordedConnection[] {
    return this.#connections;
  }

  /** Resolves once `count` connections have been accepted and all of them have closed on both sides. */
  async settled(count: number, timeoutMs = 10_000): Promise<void> {
    await waitUntil(
      `${count} relayed connection(s) to close`,
      () => this.#connections.length >= count && this.#connections.every((c) => c.closed),
      { timeoutMs, detail: () => `accepted ${this.#connections.length}` },
    );
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const recorded: RecordedConnection = { id: this.#connections.length + 1, chunks: [], closed: false };
    this.#connections.push(recorded);
    const server = connect({ host: this.#target.host, port: this.#target.port, noDelay: true });
    this.#sockets.add(client);
    this.#sockets.add(server);

    let open = 2;
    const onClose = (socket: Socket) => () => {
      this.#sockets.delete(socket);
      if (--open === 0) recorded.closed = true;
    };
    client.on("close", onClose(client));
    server.on("close", onClose(server));
    pipeRecorded(client, server, "frontend", recorded);
    pipeRecorded(server, client, "backend", recorded);
  }
}

function pipeRecorded(from: Socket, to: Socket, direction: RelayDirection, recorded: RecordedConnection): void {
  from.on("data", (chunk: Buffer) => {
    recorded.chunks.push({ direction, bytes: Buffer.from(chunk) });
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", () => from.resume());
    }
  });
  // A half-close is part of what is being relayed; an error ends both sides, as a dropped link would.
  from.on("end", () => to.end());
  from.on("error", () => to.destroy());
}
