import net from "node:net";
import {
  type BackendMessage,
  decodeBackendMessage,
  encodePasswordMessage,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupMessage,
  md5Response,
  ProtocolVersion,
  ScramClient,
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
    return RawPeer.connectTo({
      host: options.host ?? "127.0.0.1",
      port,
      allowHalfOpen: options.allowHalfOpen ?? false,
    });
  }

  /** Connects anywhere `net.connect` can: a Unix socket (`{ path }`) as well as TCP. */
  static connectTo(where: net.NetConnectOpts): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(where);
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
    try {
      await peer.login({ user, database });
    } catch (error) {
      peer.destroy();
      throw error;
    }
    return peer;
  }

  /**
   * Sends a StartupMessage and answers the authentication asked for (trust, cleartext, md5 or SCRAM, the
   * server's SCRAM signature checked) up to the first ReadyForQuery; returns every message seen on the way.
   * Throws on an ErrorResponse, on the end of the connection, and on a password request when none was given.
   */
  async login(options: {
    user: string;
    database: string;
    password?: string;
    protocolVersion?: number;
    /** Startup parameters after user and database. */
    parameters?: readonly [string, string][];
  }): Promise<BackendMessage[]> {
    const { user, database, password } = options;
    this.send(
      encodeStartupMessage({
        protocolVersion: options.protocolVersion ?? ProtocolVersion.V3_0,
        parameters: [["user", user], ["database", database], ...(options.parameters ?? [])],
      }),
    );
    const seen: BackendMessage[] = [];
    const needPassword = (asked: string): string => {
      if (password === undefined) throw new Error(`login asked for a password (${asked}) and none was given`);
      return password;
    };
    let scram: ScramClient | null = null;
    for (;;) {
      const msg = await this.next();
      if (msg === null) throw new Error(`the connection closed during login after ${JSON.stringify(seen)}`);
      seen.push(msg);
      switch (msg.type) {
        case "AuthenticationCleartextPassword":
          this.send(encodePasswordMessage({ password: needPassword(msg.type) }));
          break;
        case "AuthenticationMD5Password":
          this.send(encodePasswordMessage({ password: md5Response(needPassword(msg.type), user, msg.salt) }));
          break;
        case "AuthenticationSASL":
          scram = new ScramClient({ credentials: { password: needPassword(msg.type) } });
          this.send(encodeSASLInitialResponse({ mechanism: scram.mechanism, data: Buffer.from(scram.clientFirst()) }));
          break;
        case "AuthenticationSASLContinue":
          if (scram === null) throw new Error("AuthenticationSASLContinue before AuthenticationSASL");
          this.send(encodeSASLResponse({ data: Buffer.from(await scram.clientFinal(msg.data)) }));
          break;
        case "AuthenticationSASLFinal":
          if (scram === null) throw new Error("AuthenticationSASLFinal before AuthenticationSASL");
          scram.verifyServerFinal(msg.data);
          break;
        case "ErrorResponse":
          throw new Error(`login refused: ${msg.fields.get("C")} ${msg.fields.get("M")}`);
        case "ReadyForQuery":
          return seen;
      }
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
    const frame = await this.nextFrame(timeoutMs);
    return frame === null ? null : decodeBackendMessage(frame[0]!, frame, 5, frame.length);
  }

  /**
   * The next whole message's bytes as they arrived (type, length, body; a copy), or null once the connection
   * closed with nothing more buffered: for comparing replies byte for byte.
   */
  async nextFrame(timeoutMs = 5000): Promise<Buffer | null> {
    await waitUntil("a message from the other side", () => this.frameLength() > 0 || this.isClosed, {
      timeoutMs,
      intervalMs: 5,
    });
    const length = this.frameLength();
    if (length === 0) return null;
    const frame = Buffer.from(this.buffered.subarray(0, length));
    this.buffered = this.buffered.subarray(length);
    return frame;
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
