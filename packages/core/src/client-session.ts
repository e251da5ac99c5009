import type net from "node:net";
import {
  decodeStartupFamily,
  encodeBackendKeyData,
  encodeCopyFail,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeSync,
  errorFields,
  FrameReader,
  FrontendMessageType,
  PrebuiltBackendMessage,
  ProtocolError,
  ProtocolVersion,
  readyForQueryBytes,
  type StartupMessage,
  TransactionStatus,
} from "@pgmux/protocol";
import type { Logger } from "pino";
import { AdminConsole, isAdminConsoleDatabase } from "./admin-console.js";
import { ClientAuth } from "./client-auth.js";
import { CursorEvent, MessageCursor } from "./message-cursor.js";
import type { Pool } from "./pool.js";
import type { Pooler } from "./pooler.js";
import { formatPoolerMessage, type PoolerErrorCode, PoolerErrors } from "./pooler-errors.js";
import type { ServerConnection } from "./server-connection.js";
import type { ScramKeys } from "./server-login.js";
import { TraceDirection, type TraceTap } from "./tracer.js";
import { normalizeParameterValue, trackedParameterName } from "./tracked-parameters.js";

export const ClientState = {
  Startup: "startup",
  Auth: "auth",
  /** Authenticated; waiting for the pool to learn the server's parameters. */
  Welcome: "welcome",
  /** Logged in, holding no server. */
  Idle: "idle",
  /** Has sent a request and waits for a server. */
  Waiting: "waiting",
  /** Holds a server. */
  Active: "active",
  Closed: "closed",
} as const;
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

const T = FrontendMessageType;
/** Nothing from the client needs its body read on the hot path (for now): headers only. */
const PEEK_NONE = new Uint8Array(256);
/** Messages whose body is empty by definition: one with a body would be read differently by the server. */
const EMPTY_BODY = new Uint8Array(256);
for (const t of [T.Sync, T.Flush, T.CopyDone, T.Terminate]) EMPTY_BODY[t] = 1;
/** Most bytes a client may have read ahead of a server being linked, beyond one socket chunk. */
const MAX_PENDING_BYTES = 256 * 1024;

let nextClientId = 1;

/**
 * One application connection. Startup and authentication decode each message; after login the client's
 * bytes pass through a header-only cursor that keeps the exchange's books: how many ReadyForQuery the
 * server owes (one per Query, FunctionCall and Sync), whether extended-protocol messages wait for their
 * Sync, whether a COPY IN is open. The server may change hands only when those books are balanced.
 */
export class ClientSession {
  readonly id = nextClientId++;
  state: ClientState = ClientState.Startup;
  log: Logger;
  readonly remote: string;
  user = "";
  database = "";
  /** The client's session parameters (tracked ones): the pool's defaults overlaid with its own. */
  readonly params = new Map<string, string>();
  /** pgmux's own BackendKeyData for this client, never a server's. */
  cancelPid = 0;
  cancelKey: Buffer = Buffer.alloc(0);
  pool: Pool | null = null;
  server: ServerConnection | null = null;
  readonly connectedAt: number;
  /** Last time the client sent anything or was answered: for client_idle_timeout and idle transactions. */
  lastActivityAt: number;
  /** When the client started waiting for a server (0 when not waiting). */
  waitingSince = 0;
  /** When the server started owing replies (0 when it owes none): query_timeout's clock. */
  queryStartedAt = 0;
  transactionStartedAt = 0;

  /** ReadyForQuery the server owes this client. */
  owed = 0;
  /** Of those, the ones owed for a Sync (the rest for Query/FunctionCall). */
  syncsOwed = 0;
  /** Extended-protocol messages were sent after the last Sync. */
  unsynced = false;
  /** The server is in COPY IN: Sync and Flush are ignored by it until CopyDone/CopyFail. */
  copyIn = false;
  /** That COPY was started through the extended protocol, so a Sync must follow its end. */
  copyInExtended = false;

  private readonly reader: FrameReader;
  private readonly cursor: MessageCursor;
  private auth: ClientAuth | null = null;
  private startupParams = new Map<string, string>();
  /** Set while an open trace follows this client: its bytes both ways are recorded. */
  trace: TraceTap | null = null;
  /** Set when this client logged in to the admin console (database pgbouncer or pgmux) instead of a pool. */
  adminConsole: AdminConsole | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closing = false;

  constructor(
    readonly pooler: Pooler,
    readonly socket: net.Socket,
    now: number,
  ) {
    this.connectedAt = this.lastActivityAt = now;
    this.remote = socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort}` : "unix";
    this.log = pooler.log.child({ client: this.id, remote: this.remote });
    const max = pooler.settings.maxPacketSize;
    this.reader = new FrameReader((type, buf, start, end) => this.onStartupFrame(type, buf, start, end), {
      maxMessageBytes: max,
      untyped: true,
    });
    this.cursor = new MessageCursor(PEEK_NONE, max);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.server?.resumeReading());
    socket.on("error", (err) => this.close(`socket error: ${err.message}`));
    socket.on("close", () => this.onClose());
  }

  get isWaiting(): boolean {
    return this.state === ClientState.Waiting;
  }

  /** True when the server has every byte of the client's last message and the reply count can be trusted. */
  get atMessageBoundary(): boolean {
    return this.cursor.atBoundary && this.booksReliable;
  }

  /**
   * False once the count of replies owed may be wrong (a protocol error cut a chunk short; a Query sent
   * between a failed extended message and its Sync is skipped by the server): the server can then only be
   * closed when the client leaves, never drained and reused.
   */
  private booksReliable = true;
  /** Bytes a client sent behind its login before the login completed, replayed once it has. */
  private early: Buffer[] = [];
  private earlyBytes = 0;

  private onData(chunk: Buffer): void {
    try {
      if (this.adminConsole !== null) {
        this.adminConsole.onData(chunk);
        return;
      }
      if (this.state === ClientState.Active || this.state === ClientState.Idle || this.state === ClientState.Waiting) {
        this.onRequestData(chunk);
      } else if (this.state === ClientState.Startup || this.state === ClientState.Auth) {
        this.reader.push(chunk);
        if (this.pastLogin) {
          const rest = this.reader.takeRest();
          if (rest !== null && rest.length > 0) this.onEarlyRequest(Buffer.from(rest));
        }
      } else if (this.state === ClientState.Welcome) {
        this.onEarlyRequest(chunk);
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.booksReliable = false;
        this.fail("protocol_violation", { reason: err.message });
      } else {
        // A fault of pgmux's own must cost this one connection, never the process.
        this.log.error({ err }, "internal error while handling client data");
        this.close("internal error");
      }
    }
  }

  // ---- startup and authentication -------------------------------------------------------------------

  private onStartupFrame(type: number, buf: Buffer, start: number, end: number): void {
    if (this.state === ClientState.Auth) {
      this.auth!.onMessage(type, buf, start, end);
      if (this.pastLogin) this.reader.stop();
      return;
    }
    const msg = decodeStartupFamily(buf, start, end);
    switch (msg.type) {
      case "SSLRequest":
      case "GSSENCRequest":
        // No TLS or GSSAPI encryption yet: 'N' tells the client to go on in plaintext (or give up).
        this.socket.write(NO);
        return;
      case "CancelRequest":
        this.reader.stop();
        this.pooler.cancelRequest(msg.processId, msg.secretKey);
        this.close("cancel request handled", true);
        return;
      case "StartupMessage":
        this.reader.untyped = false;
        this.onStartupMessage(msg);
        if (this.pastLogin) this.reader.stop();
    }
  }

  private onStartupMessage(msg: StartupMessage): void {
    const major = msg.protocolVersion >>> 16;
    const minor = msg.protocolVersion & 0xffff;
    if (major !== 3) {
      this.fail("unsupported_protocol", { version: `${major}.${minor}` });
      return;
    }
    const unsupportedOptions: string[] = [];
    const ignored = this.pooler.settings.ignoreStartupParameters;
    for (const [name, value] of msg.parameters) {
      const lower = name.toLowerCase();
      if (lower.startsWith("_pq_.")) {
        unsupportedOptions.push(name);
      } else if (lower === "user") {
        this.user = value;
      } else if (lower === "database") {
        this.database = value;
      } else if (lower === "options") {
        if (!this.takeOptions(value) && !ignored.has("options")) {
          this.fail("unknown_startup_parameter", { name: `options=${value}` });
          return;
        }
      } else {
        const tracked = trackedParameterName(name);
        if (tracked !== undefined) this.startupParams.set(tracked, normalizeParameterValue(tracked, value));
        else if (!ignored.has(lower) && lower !== "replication") {
          this.fail("unknown_startup_parameter", { name });
          return;
        } else if (lower === "replication" && value !== "false" && value !== "0" && value !== "off") {
          this.fail("unknown_startup_parameter", { name: "replication" });
          return;
        }
      }
    }
    if (minor !== 0 || unsupportedOptions.length > 0) {
      this.socket.write(
        encodeNegotiateProtocolVersion({
          newestProtocolVersion: ProtocolVersion.V3_0,
          unrecognizedOptions: unsupportedOptions,
        }),
      );
    }
    if (this.user === "") {
      this.fail("no_user", {});
      return;
    }
    if (this.database === "") this.database = this.user;
    this.log = this.log.child({ user: this.user, database: this.database });
    this.state = ClientState.Auth;
    this.auth = new ClientAuth(this, this.pooler.settings, (keys) => this.authenticated(keys), this.pooler.verifiers);
    this.auth.begin();
  }

  /** The login is over (or only waits for the pool's parameters): what follows is requests. */
  private get pastLogin(): boolean {
    return this.state === ClientState.Welcome || this.state === ClientState.Idle;
  }

  /** Requests sent right behind the login, as PostgreSQL allows: handled now, or held until it completes. */
  private onEarlyRequest(bytes: Buffer): void {
    if (this.adminConsole !== null) {
      this.adminConsole.onData(bytes);
      return;
    }
    if (this.state === ClientState.Idle) {
      this.onRequestData(bytes);
      return;
    }
    this.early.push(bytes);
    this.earlyBytes += bytes.length;
    if (this.earlyBytes > MAX_PENDING_BYTES) this.socket.pause();
  }

  /** `-c name=value` / `--name=value` items of the options parameter for tracked parameters; false if others. */
  private takeOptions(options: string): boolean {
    const words = options
      .trim()
      .split(/\s+/)
      .filter((w) => w !== "");
    for (let i = 0; i < words.length; i++) {
      let item = words[i]!;
      if (item === "-c") item = words[++i] ?? "";
      else if (item.startsWith("-c")) item = item.slice(2);
      else if (item.startsWith("--")) item = item.slice(2);
      else return false;
      const eq = item.indexOf("=");
      const name = trackedParameterName(item.slice(0, eq).replace(/-/g, "_"));
      if (eq < 0 || name === undefined) return false;
      this.startupParams.set(name, normalizeParameterValue(name, item.slice(eq + 1)));
    }
    return true;
  }

  private authenticated(scramKeys: ScramKeys | null): void {
    this.auth = null;
    if (isAdminConsoleDatabase(this.database)) {
      this.adminConsole = AdminConsole.open(this);
      return;
    }
    const pool = this.pooler.poolFor(this.database, this.user);
    if (pool === null) {
      this.fail("unknown_database", { database: this.database });
      return;
    }
    if (scramKeys !== null && pool.clientScramKeys === null) pool.clientScramKeys = scramKeys;
    this.pool = pool;
    this.state = ClientState.Welcome;
    this.waitingSince = this.pooler.now();
    this.socket.write(PrebuiltBackendMessage.AuthenticationOk);
    pool.awaitWelcome(this);
  }

  /** The pool knows its server's parameters: finish the login. */
  welcomeReady(welcome: ReadonlyMap<string, string>): void {
    if (this.state !== ClientState.Welcome) return;
    this.waitingSince = 0;
    for (const [k, v] of welcome) this.params.set(k, v);
    for (const [k, v] of this.startupParams) this.params.set(k, v);
    const parts: Buffer[] = [];
    for (const [name, value] of this.params) parts.push(encodeParameterStatus({ name, value }));
    const { pid, key } = this.pooler.registerCancelKey(this);
    this.cancelPid = pid;
    this.cancelKey = key;
    parts.push(encodeBackendKeyData({ processId: pid, secretKey: key }));
    parts.push(readyForQueryBytes(TransactionStatus.Idle));
    this.socket.write(Buffer.concat(parts));
    this.state = ClientState.Idle;
    this.lastActivityAt = this.pooler.now();
    this.trace = this.pooler.tracer.tapFor(this);
    this.log[this.pooler.settings.logConnections === false ? "debug" : "info"]("client logged in");
    if (this.early.length > 0) {
      const early = this.early.length === 1 ? this.early[0]! : Buffer.concat(this.early);
      this.early = [];
      this.earlyBytes = 0;
      this.socket.resume();
      this.onData(early);
    }
  }

  // ---- the hot path: client → server ----------------------------------------------------------------

  private onRequestData(chunk: Buffer): void {
    if (this.trace !== null) this.trace.record(TraceDirection.F2B, chunk, 0, chunk.length);
    const cur = this.cursor;
    const end = chunk.length;
    let pos = 0;
    /** Start of the bytes not yet sent on: messages answered here are cut out of the chunk. */
    let from = 0;
    while (pos < end) {
      pos = cur.advance(chunk, pos);
      if (cur.event !== CursorEvent.Header) continue;
      if (cur.length !== 4 && EMPTY_BODY[cur.type] === 1) {
        throw new ProtocolError(`${describeType(cur.type)} message with a body of ${cur.length - 4} bytes`);
      }
      switch (cur.type) {
        case T.Query:
        case T.FunctionCall:
          if (this.unsynced) this.booksReliable = false;
          if (this.owed++ === 0) this.queryStartedAt = this.pooler.now();
          break;
        case T.Sync:
          if (this.answersAlone(from, pos, end)) {
            // No server and nothing sent since the last ReadyForQuery: the answer is known.
            this.socket.write(readyForQueryBytes(TransactionStatus.Idle));
            from = pos;
            break;
          }
          if (!this.copyIn) {
            if (this.owed++ === 0) this.queryStartedAt = this.pooler.now();
            this.syncsOwed++;
          }
          this.unsynced = false;
          break;
        case T.Parse:
        case T.Bind:
        case T.Describe:
        case T.Execute:
        case T.Close:
          this.unsynced = true;
          break;
        case T.CopyDone:
        case T.CopyFail:
        case T.CopyData:
        case T.Flush:
          // Outside COPY a server ignores COPY messages (postgres.js sends a CopyFail after every COPY),
          // and a Flush with nothing sent flushes nothing: neither is worth taking a server for.
          if (this.answersAlone(from, pos, end)) from = pos + cur.length - 4;
          else if (cur.type !== T.Flush && cur.type !== T.CopyData) this.copyIn = false;
          break;
        case T.Terminate: {
          const start = pos - 5;
          if (start > from) this.send(chunk.subarray(from, start));
          this.close("client sent Terminate", true);
          return;
        }
        default:
          throw new ProtocolError(`unexpected message type ${describeType(cur.type)} from the client`);
      }
    }
    if (from === 0) this.send(chunk);
    else if (from < end) this.send(chunk.subarray(from));
    // What was sent may have balanced the books without a reply to come: the CopyDone that ends a COPY the
    // server already rejected (its ReadyForQuery came first), or a Flush.
    const server = this.server;
    if (server !== null && this.owed === 0 && this.state === ClientState.Active && this.releasable(server.status)) {
      this.pool!.release(server);
    }
  }

  /**
   * True when the message whose header just ended at `pos` may be handled without a server: the client
   * holds none and has nothing on its way to one, and the message lies whole in this chunk, first in line.
   */
  private answersAlone(from: number, pos: number, end: number): boolean {
    return (
      this.state === ClientState.Idle &&
      this.pending.length === 0 &&
      from === pos - 5 &&
      pos + this.cursor.length - 4 <= end
    );
  }

  /** Bytes for the server: straight through when one is linked, else held (bounded) while one is found. */
  private send(bytes: Buffer): void {
    this.lastActivityAt = this.pooler.now();
    const server = this.server;
    if (server !== null && this.state === ClientState.Active) {
      this.pool!.stats.bytesFromClients += bytes.length;
      if (!server.write(bytes)) this.socket.pause();
      return;
    }
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes > MAX_PENDING_BYTES) this.socket.pause();
    if (this.state === ClientState.Idle) {
      this.state = ClientState.Waiting;
      this.waitingSince = this.lastActivityAt;
      this.socket.pause();
      this.pool!.enqueue(this);
    }
  }

  /** A server is now this client's: send what was held. */
  linked(server: ServerConnection, now: number): void {
    if (this.state !== ClientState.Waiting) {
      // The client left while the server was being prepared for it; its held bytes were never sent.
      this.pool!.unusedLink(server);
      return;
    }
    this.server = server;
    this.state = ClientState.Active;
    if (this.waitingSince > 0) {
      this.pool!.stats.waitMicros += (now - this.waitingSince) * 1000;
      this.pool!.histograms.wait.observe(now - this.waitingSince);
    }
    this.waitingSince = 0;
    if (this.transactionStartedAt === 0) this.transactionStartedAt = now;
    const held = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let ok = true;
    for (const b of held) {
      this.pool!.stats.bytesFromClients += b.length;
      ok = server.write(b);
    }
    if (ok) this.socket.resume();
    // What was held may need no reply at all (CopyData after a COPY the server ended): nothing to wait for.
    if (this.owed === 0 && this.releasable(server.status)) this.pool!.release(server);
  }

  /**
   * Server → client bytes. Called with whole chunks (or their head, up to a releasing ReadyForQuery).
   */
  forward(bytes: Buffer): void {
    if (this.trace !== null) this.trace.record(TraceDirection.B2F, bytes, 0, bytes.length);
    this.pool!.stats.bytesFromServers += bytes.length;
    if (!this.socket.write(bytes)) this.server?.pauseReading();
  }

  /**
   * A ReadyForQuery arrived. Returns true when the server should go back to the pool now (after the bytes
   * up to it are forwarded).
   */
  readyForQuery(status: number): boolean {
    const pool = this.pool!;
    // A server in COPY IN sends no ReadyForQuery: one means the COPY is over, whether or not the client
    // ever sent CopyDone (a client may move on after the server rejected the COPY).
    this.copyIn = false;
    if (this.owed > 0) this.owed--;
    if (this.syncsOwed > this.owed) this.syncsOwed = this.owed;
    pool.stats.queries++;
    const now = this.pooler.now();
    this.lastActivityAt = now;
    pool.histograms.query.observe(this.queryStartedAt > 0 ? now - this.queryStartedAt : 0);
    if (this.owed === 0) this.queryStartedAt = 0;
    if (status === TransactionStatus.Idle && this.owed === 0) {
      pool.stats.transactions++;
      pool.histograms.transaction.observe(this.transactionStartedAt > 0 ? now - this.transactionStartedAt : 0);
      if (this.transactionStartedAt > 0) pool.stats.transactionMicros += (now - this.transactionStartedAt) * 1000;
      this.transactionStartedAt = 0;
    } else if (this.transactionStartedAt === 0) {
      this.transactionStartedAt = now;
    }
    if (pool.mode === "statement" && status !== TransactionStatus.Idle && this.owed === 0) {
      queueMicrotask(() => this.fail("statement_mode_transaction", { pool: pool.name }));
      return false;
    }
    return this.releasable(status);
  }

  /** Whether the linked server may go back to the pool now: nothing owed or half-sent, outside a transaction. */
  releasable(status: number): boolean {
    const server = this.server;
    return (
      server !== null &&
      (this.pool!.mode !== "session" || this.pool!.closing) &&
      status === TransactionStatus.Idle &&
      this.owed === 0 &&
      !this.unsynced &&
      !this.copyIn &&
      this.cursor.atBoundary &&
      server.atMessageBoundary &&
      !server.copyBoth &&
      server.cancelsInFlight === 0
    );
  }

  /** The server answered with CopyInResponse. */
  copyInStarted(): void {
    this.copyIn = true;
    // Every Sync still owed was sent after the Execute that started this COPY, so the server reads it in
    // COPY IN mode and ignores it: those ReadyForQuery will never come.
    this.copyInExtended = this.syncsOwed > 0;
    if (this.syncsOwed > 0) {
      this.owed -= this.syncsOwed;
      this.syncsOwed = 0;
    }
  }

  /** The pool took the server back. */
  unlinked(): void {
    this.server = null;
    this.state = ClientState.Idle;
    this.copyInExtended = false;
    // It may have been paused for the server's backpressure; its next request must be read.
    this.socket.resume();
  }

  /**
   * What a server needs after this client vanished mid-exchange: the messages that bring it back to a
   * ReadyForQuery, and how many ReadyForQuery to expect in all.
   */
  repairMessages(): { bytes: Buffer; owed: number; cancel: boolean } {
    const parts: Buffer[] = [];
    let owed = this.owed;
    const cancel = this.owed > 0 && !this.copyIn;
    if (this.copyIn) {
      parts.push(encodeCopyFail({ message: "client disconnected" }));
      if (this.copyInExtended) {
        parts.push(encodeSync());
        owed++;
      }
    } else if (this.unsynced) {
      parts.push(encodeSync());
      owed++;
    }
    return { bytes: parts.length === 0 ? EMPTY : Buffer.concat(parts), owed, cancel };
  }

  resumeReading(): void {
    if (this.state === ClientState.Active) this.socket.resume();
  }

  // ---- endings -----------------------------------------------------------------------------------------

  /** Sends pgmux's own error; FATAL ones close the client. */
  fail(code: PoolerErrorCode, details: Readonly<Record<string, string | number>>): void {
    if (this.state === ClientState.Closed || this.closing) return;
    const spec = PoolerErrors[code];
    const fields = errorFields({
      severity: spec.severity,
      code: spec.sqlState,
      message: formatPoolerMessage(spec.message, details),
      ...("hint" in spec ? { hint: spec.hint } : {}),
    });
    this.pooler.stats.countPoolerError(code);
    if (spec.severity === "FATAL") {
      this.socket.write(encodeErrorResponse({ fields }));
      this.close(code, true);
    } else {
      this.socket.write(encodeErrorResponse({ fields }));
    }
  }

  /** The linked server died. */
  serverLost(reason: string): void {
    this.server = null;
    this.fail("server_lost", { reason });
  }

  close(reason: string, graceful = false): void {
    if (this.state === ClientState.Closed || this.closing) return;
    this.closing = true;
    this.log.debug({ reason }, "client closing");
    this.closeReason = reason;
    if (graceful) closeAfterFlush(this.socket);
    else this.socket.destroy();
    this.detach();
  }

  closeReason = "";

  private onClose(): void {
    if (this.closeReason === "") this.closeReason = "client closed the connection";
    this.detach();
  }

  /** Lets go of everything this client held, exactly once. */
  private detach(): void {
    if (this.state === ClientState.Closed) return;
    const previous = this.state;
    this.state = ClientState.Closed;
    this.pooler.clientClosed(this);
    const loggedIn = previous !== ClientState.Startup && previous !== ClientState.Auth;
    const level = loggedIn && this.pooler.settings.logDisconnections !== false ? "info" : "debug";
    this.log[level]({ reason: this.closeReason, state: previous }, "client disconnected");
    const pool = this.pool;
    if (pool === null) return;
    if (previous === ClientState.Waiting || previous === ClientState.Welcome) pool.forget(this);
    const server = this.server;
    this.server = null;
    if (server !== null && server.client === this) pool.reclaim(server, this);
  }
}

const NO = Buffer.from("N");
/** How long a closing connection may keep its end open after pgmux has said its last word. */
const LINGER_MS = 1000;

/**
 * Ends a connection so that its last message (an ErrorResponse) arrives: FIN after the bytes, incoming
 * bytes read and dropped meanwhile (closing on unread data would send RST and could lose the message),
 * and the socket destroyed once the peer closes or LINGER_MS have passed.
 */
export function closeAfterFlush(socket: net.Socket): void {
  socket.end();
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
const EMPTY = Buffer.alloc(0);

function describeType(type: number): string {
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16).padStart(2, "0")}`;
}
