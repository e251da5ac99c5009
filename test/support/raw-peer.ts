import net from "node:net";
import {
  type BackendMessage,
  decodeBackendMessage,
  encodeQuery,
  encodeStartupMessage,
  ProtocolVersion,
} from "@pgmux/protocol";
import { waitUntil } from "./wait-until.js";

/**
 * A client scripted byte by byte on a raw socket: for the exchanges no driver will produce (pipelines cut
 * anywhere, messages out of order, misbehaviour) and for reading every reply exactly as it arrived.
 */
export class RawPeer {
  private buffered = Buffer.alloc(0);
  isClosed = false;
  /** The other side finished its half (FIN received). */
  ended = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
    });
    socket.on("end", () => {
      this.ended = true;
    });
    socket.on("close", () => {
      this.isClosed = true;
    });
    socket.on("error", () => {});
  }

  static connect(port: number, options: { allowHalfOpen?: boolean; host?: string } = {}): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({
        host: options.host ?? "127.0.0.1",
        port,
        allowHalfOpen: options.allowHalfOpen ?? false,
      });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawPeer(socket));
      });
    });
  }

  /**
   * Connects and logs in with a trust login (the pgmux or server at `port` must not ask for a password),
   * returning once the first ReadyForQuery arrives.
   */
  static async loggedIn(port: number, user: string, database: string): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    peer.send(
      encodeStartupMessage({
        protocolVersion: ProtocolVersion.V3_0,
        parameters: [
          ["user", user],
          ["database", database],
        ],
      }),
    );
    for (;;) {
      const msg = await peer.next();
      if (msg === null || msg.type === "ErrorResponse") {
        peer.destroy();
        throw new Error(`login failed: ${JSON.stringify(msg)}`);
      }
      if (msg.type === "ReadyForQuery") return peer;
    }
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The next whole message, or null once the connection closed with nothing more buffered. */
  async next(timeoutMs = 5000): Promise<BackendMessage | null> {
    await waitUntil("a message from the other side", () => this.frameLength() > 0 || this.isClosed, {
      timeoutMs,
      intervalMs: 5,
    });
    const length = this.frameLength();
    if (length === 0) return null;
    const frame = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return decodeBackendMessage(frame[0]!, frame, 5, length);
  }

  /** Messages up to and including the next ReadyForQuery (or the end of the connection). */
  async untilReady(timeoutMs = 5000): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      const msg = await this.next(timeoutMs);
      if (msg === null) return out;
      out.push(msg);
      if (msg.type === "ReadyForQuery") return out;
    }
  }

  /** Bytes received and not yet read as messages. */
  get unread(): number {
    return this.buffered.length;
  }

  /** Waits for the end of the connection; throws if anything more arrives first. */
  async closed(timeoutMs = 5000): Promise<void> {
    await waitUntil("the connection to close", () => this.isClosed, { timeoutMs, intervalMs: 5 });
    if (this.buffered.length > 0) throw new Error(`${this.buffered.length} unread bytes arrived before the close`);
  }

  private frameLength(): number {
    if (this.buffered.length < 5) return 0;
    const length = 1 + this.buffered.readUInt32BE(1);
    return this.buffered.length >= length ? length : 0;
  }

  /** A simple query; the first column of each row as text. Throws on an ErrorResponse (after its ReadyForQuery). */
  async query(sql: string): Promise<(string | null)[]> {
    this.send(encodeQuery({ query: sql }));
    const rows: (string | null)[] = [];
    let error: string | null = null;
    for (;;) {
      const msg = await this.next();
      if (msg === null) throw new Error("the connection closed during a query");
      if (msg.type === "DataRow") rows.push(msg.values[0] === null ? null : Buffer.from(msg.values[0]!).toString());
      if (msg.type === "ErrorResponse") error ??= `${msg.fields.get("C")} ${msg.fields.get("M")}`;
      if (msg.type === "ReadyForQuery") {
        if (error !== null) throw new Error(error);
        return rows;
      }
    }
  }
}
