import net from "node:net";
import {
  BackendMessageType,
  decodeBackendMessage,
  encodeQuery,
  encodeStartupMessage,
  FrameReader,
  ProtocolError,
  ProtocolVersion,
  TransactionStatus,
} from "@pgmux/protocol";
import type { Logger } from "pino";
import type { ClientSession } from "./client-session.js";
import { CursorEvent, MessageCursor, messageHeader } from "./message-cursor.js";
import type { Pool } from "./pool.js";
import { ServerStatements } from "./prepared-statements.js";
import { READ_BUFFER_BYTES, readBuffer } from "./read-buffers.js";
import { completes, type ReplyQueue, Slot } from "./reply-queue.js";
import { ServerLogin } from "./server-login.js";
import { isReportedParameter } from "./tracked-parameters.js";

export const ServerState = {
  Connecting: "connecting",
  Login: "login",
  Idle: "idle",
  Active: "active",
  /** Running a query of pgmux's own (check, reset, parameter sync, cleanup): its replies are swallowed. */
  Internal: "internal",
  Closed: "closed",
} as const;
export type ServerState = (typeof ServerState)[keyof typeof ServerState];

const Z = BackendMessageType.ReadyForQuery;
const S = BackendMessageType.ParameterStatus;
const E = BackendMessageType.ErrorResponse;
const N = BackendMessageType.NoticeResponse;
const A = BackendMessageType.NotificationResponse;
const G = BackendMessageType.CopyInResponse;
const W = BackendMessageType.CopyBothResponse;
const ParseComplete = BackendMessageType.ParseComplete;

/** The server→client types the pooler must look inside; everything else passes by its header. */
const PEEK = new Uint8Array(256);
for (const t of [Z, S, E, G, W]) PEEK[t] = 1;

/** Slots the server never answers: pgmux settles them as soon as they reach the head. */
const NO_REPLY = new Uint8Array(16);
NO_REPLY[Slot.Skip] = NO_REPLY[Slot.EmitParseComplete] = 1;
/** Slots whose reply is pgmux's own and never reaches the client. */
const SWALLOW = new Uint8Array(16);
SWALLOW[Slot.SwallowParse] = SWALLOW[Slot.SwallowClose] = SWALLOW[Slot.SwallowSync] = 1;

/** "cached plan must not change result type": a prepared statement's tables changed shape since its Parse. */
function isStalePlanError(body: Buffer, start: number, end: number): boolean {
  const msg = decodeBackendMessage(E, body, start, end);
  return (
    msg.type === "ErrorResponse" &&
    msg.fields.get("C") === "0A000" &&
    msg.fields.get("M") === "cached plan must not change result type"
  );
}

function holdsSwallow(q: ReplyQueue): boolean {
  for (let seq = q.head; seq < q.tail; seq++) if (SWALLOW[q.kindAt(seq)] === 1) return true;
  return false;
}

function describeReply(type: number): string {
  return `'${String.fromCharCode(type)}'`;
}

/** What a pgmux-owned query found: the last ReadyForQuery status, and the first error's message if any. */
export interface InternalResult {
  readonly status: number;
  readonly error: string | null;
}

let nextServerId = 1;

/**
 * One connection to PostgreSQL. It logs in (decoding every message: this is not the hot path), then either
 * waits idle in its pool, carries one client's traffic (reading headers only and forwarding the chunks as
 * they came), or runs a query of pgmux's own. The client's exchange state (replies owed, unsynced extended
 * messages, COPY) lives on the client session; this class decides from it when the server may go back.
 */
export class ServerConnection {
  readonly id = nextServerId++;
  state: ServerState = ServerState.Connecting;
  readonly params = new Map<string, string>();
  backendPid = 0;
  backendKey: Buffer = Buffer.alloc(0);
  client: ClientSession | null = null;
  /** Status byte of the last ReadyForQuery. */
  status: number = TransactionStatus.Idle;
  /** Cancel requests sent to this server and not yet finished: until then it may not change hands. */
  cancelsInFlight = 0;
  /** COPY BOTH (replication) was started: this server can only be closed afterwards. */
  copyBoth = false;
  readonly createdAt: number;
  /** The pool's generation when this server was opened (see Pool.reconnect). */
  readonly generation: number;
  lastUsedAt: number;
  /** When the current state began (connect, internal query): the janitor's deadline clock. */
  stateSince: number;
  closeReason = "";
  /** Session-level SETs of clients this server carries (parameter → statement), for the next link's sync. */
  readonly sessionSets = new Map<string, string>();
  /** The prepared statements this server holds under pgmux's names. */
  readonly statements: ServerStatements;

  readonly socket: net.Socket;
  readonly log: Logger;
  private readonly cursor: MessageCursor;
  private login: ServerLogin | null;
  private loginReader: FrameReader | null;
  private internalOwed = 0;
  private internalError: string | null = null;
  private internalDone: ((result: InternalResult) => void) | null = null;

  constructor(
    readonly pool: Pool,
    now: number,
  ) {
    this.createdAt = this.lastUsedAt = this.stateSince = now;
    this.generation = pool.generation;
    // Kept on every server, even in pools that track none: a reload may switch the pool's mode while
    // clients that carry statements are still connected.
    this.statements = new ServerStatements(pool.pooler.settings.maxPreparedStatements);
    const db = pool.database;
    this.log = pool.log.child({ server: this.id });
    this.cursor = new MessageCursor(PEEK, pool.pooler.settings.maxPacketSize);
    this.login = new ServerLogin(pool.serverUser, pool.serverSecret, pool.clientScramKeys);
    this.loginReader = new FrameReader((type, buf, start, end) => this.onLoginMessage(type, buf, start, end), {
      maxMessageBytes: pool.pooler.settings.maxPacketSize,
    });
    this.socket = db.host.startsWith("/")
      ? net.connect({ path: `${db.host}/.s.PGSQL.${db.port}`, onread: this.onread() })
      : net.connect({ host: db.host, port: db.port, onread: this.onread() });
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 60_000);
    this.socket.on("connect", () => this.onConnect());
    this.socket.on("drain", () => this.client?.resumeReading());
    this.socket.on("error", (err) => this.close(`socket error: ${err.message}`));
    this.socket.on("close", () => this.onClose());
  }

  /** The buffer the next read goes into (see read-buffers.ts); null once a client kept the last one. */
  private readInto: Buffer | null = null;

  private onread(): net.OnReadOpts {
    return {
      buffer: () => {
        if (this.readInto === null) this.readInto = Buffer.allocUnsafe(READ_BUFFER_BYTES);
        return this.readInto;
      },
      callback: (bytes: number, buffer: Uint8Array) => {
        // Login steps may keep decoded views while a SCRAM computation runs: those reads are never reused.
        readBuffer.retained = this.state === ServerState.Login;
        this.onData((buffer as Buffer).subarray(0, bytes));
        if (readBuffer.retained) this.readInto = null;
        return true;
      },
    };
  }

  private onConnect(): void {
    this.state = ServerState.Login;
    const params: [string, string][] = [
      ["user", this.pool.serverUser],
      ["database", this.pool.database.dbname],
    ];
    for (const [k, v] of this.pool.database.serverStartupParameters) params.push([k, v]);
    this.socket.write(encodeStartupMessage({ protocolVersion: ProtocolVersion.V3_0, parameters: params }));
  }

  private onData(chunk: Buffer): void {
    try {
      switch (this.state) {
        case ServerState.Active:
          this.onActiveData(chunk, 0);
          return;
        case ServerState.Login:
          this.loginReader!.push(chunk);
          return;
        default:
          this.onOwnData(chunk, 0);
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.close(`protocol violation from server: ${err.message}`);
      } else {
        // A fault of pgmux's own (or a login step that threw) costs this server and its client, not the process.
        this.log.error({ err }, "internal error while handling server data");
        this.close(err instanceof Error ? `internal error: ${err.message}` : "internal error");
      }
    }
  }

  private onLoginMessage(type: number, buf: Buffer, start: number, end: number): void {
    const msg = decodeBackendMessage(type, buf, start, end);
    switch (msg.type) {
      case "ParameterStatus":
        this.params.set(msg.name, msg.value);
        return;
      case "BackendKeyData":
        this.backendPid = msg.processId;
        this.backendKey = Buffer.from(msg.secretKey);
        return;
      case "ReadyForQuery":
        this.loginReader!.stop();
        this.loginReader = null;
        this.login = null;
        this.status = msg.status;
        this.pool.serverLoggedIn(this);
        return;
      case "ErrorResponse":
        this.pool.serverLoginFailed(this, msg.fields.get("M") ?? "login refused", msg.fields.get("C") ?? "");
        this.close("login refused by the server");
        return;
      case "NoticeResponse":
        return;
      case "NegotiateProtocolVersion":
        return;
      default: {
        let reply: Buffer | Promise<Buffer> | null;
        try {
          reply = this.login!.respond(msg);
        } catch (err) {
          this.failLogin(err);
          return;
        }
        if (reply instanceof Promise) {
          reply.then(
            (bytes) => {
              if (this.state === ServerState.Login) this.socket.write(bytes);
            },
            (err: unknown) => this.failLogin(err),
          );
        } else if (reply !== null) {
          this.socket.write(reply);
        }
      }
    }
  }

  private failLogin(err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    this.pool.serverLoginFailed(this, reason, "");
    this.close(`login failed: ${reason}`);
  }

  /**
   * Server → client traffic of a linked client: headers only; whole chunks forwarded. Where the client's
   * prepared statements are carried across servers, each reply is matched with what it answers, so that
   * replies to pgmux's own messages are cut out and the ones pgmux gives in the server's place are put in.
   */
  private onActiveData(chunk: Buffer, from: number): void {
    const client = this.client!;
    const q = client.replies;
    const cur = this.cursor;
    const end = chunk.length;
    let pos = from;
    let messageStart = cur.atBoundary ? from : -1;
    while (pos < end || cur.pending) {
      if (cur.atBoundary) messageStart = pos;
      pos = cur.advance(chunk, pos);
      if (cur.event === CursorEvent.Header) {
        if (q !== null) from = this.onReplyHeader(client, q, chunk, from, messageStart, pos);
      } else if (cur.event === CursorEvent.Message) {
        switch (cur.type) {
          case Z:
            this.status = cur.body[cur.bodyStart]!;
            if (this.swallowingReady) {
              this.swallowingReady = false;
              from = pos;
              break;
            }
            if (client.readyForQuery(this.status)) {
              // Everything owed has arrived: forward up to here, let the server go, and treat any bytes
              // after it as the now unlinked server's.
              client.forward(from === 0 && pos === end ? chunk : chunk.subarray(from, pos));
              this.pool.release(this);
              if (pos < end) this.onData(chunk.subarray(pos));
              return;
            }
            break;
          case S:
            this.onParameterStatus(cur.body, cur.bodyStart, cur.bodyEnd, client);
            break;
          case E:
            if (this.errorEndsSlot) {
              this.errorEndsSlot = false;
              if (
                messageStart >= 0 &&
                isStalePlanError(cur.body, cur.bodyStart, cur.bodyEnd) &&
                client.retryStaleStatement(this)
              ) {
                if (messageStart > from) client.forward(chunk.subarray(from, messageStart));
                from = pos;
                break;
              }
              client.replyError(this);
              client.repliesForwarded++;
            }
            this.pool.pooler.stats.countServerError(cur.body, cur.bodyStart, cur.bodyEnd);
            client.serverError();
            break;
          case G:
            client.copyInStarted();
            break;
          case W:
            this.copyBoth = true;
            if (this.pool.mode !== "session") {
              // A COPY BOTH stream never ends in a ReadyForQuery this pool could release on.
              queueMicrotask(() => client.fail("server_terminated_copy_both", { mode: this.pool.mode }));
            }
            break;
        }
      }
      if (q !== null && q.size > 0 && NO_REPLY[q.headKind] === 1 && cur.atBoundary) {
        // Every earlier reply has gone by: the ones pgmux owes in the server's place follow here.
        if (pos > from) client.forward(chunk.subarray(from, pos));
        from = pos;
        client.emitReadyReplies();
      }
    }
    let stop = end;
    if (q !== null && cur.inHeader && holdsSwallow(q)) {
      // The next reply may be one to cut out: its first header bytes wait until it is known.
      stop = messageStart < 0 ? from : messageStart;
      this.heldHeader = true;
    }
    if (from === 0 && stop === end) client.forward(chunk);
    else if (from < stop) client.forward(chunk.subarray(from, stop));
  }

  /** Part of a reply header was held back with the previous chunk (see onActiveData). */
  private heldHeader = false;
  /** The ErrorResponse being read completes the head slot. */
  private errorEndsSlot = false;
  /** The ReadyForQuery being read is pgmux's (an exchange sent again): it is not forwarded. */
  private swallowingReady = false;

  /**
   * A reply's header: the head slot it completes is settled. Returns where the unforwarded bytes of the
   * chunk now start.
   */
  private onReplyHeader(
    client: ClientSession,
    q: ReplyQueue,
    chunk: Buffer,
    from: number,
    messageStart: number,
    pos: number,
  ): number {
    const cur = this.cursor;
    const type = cur.type;
    const held = this.heldHeader;
    this.heldHeader = false;
    if (q.size > 0 && completes(q.headKind, type)) {
      if (type === E && cur.length - 4 > cur.maxPeekBytes) {
        client.replyError(this);
        client.repliesForwarded++;
      } else if (type === E) {
        // Settled with its body, at its Message event: it may be a stale statement pgmux retries.
        this.errorEndsSlot = true;
      } else if (q.headKind === Slot.SwallowSync) {
        q.shift();
        this.swallowingReady = true;
        const start = held ? from : messageStart;
        if (start > from) client.forward(chunk.subarray(from, start));
        return pos;
      } else if (SWALLOW[q.headKind] === 1) {
        if (cur.length !== 4) throw new ProtocolError(`${describeReply(type)} with a body`);
        if (type === ParseComplete && q.headRef !== null) q.headRef.validated = true;
        q.shift();
        // pgmux's own Parse or Close was answered: the reply is cut out of what the client receives.
        const start = held ? from : messageStart;
        if (start > from) client.forward(chunk.subarray(from, start));
        return pos;
      } else {
        if (type === ParseComplete && q.headRef !== null) q.headRef.validated = true;
        q.shift();
        client.repliesForwarded++;
      }
    }
    if (held) {
      client.forward(messageHeader(type, cur.length));
      return pos;
    }
    return from;
  }
  private onParameterStatus(body: Buffer, start: number, end: number, client: ClientSession | null): void {
    const msg = decodeBackendMessage(S, body, start, end);
    if (msg.type !== "ParameterStatus") return;
    this.params.set(msg.name, msg.value);
    // A change the server reports during the client's turn was made by that client: it is now its own value.
    if (client !== null && isReportedParameter(msg.name)) client.params.set(msg.name, msg.value);
  }

  /** Traffic while idle or running pgmux's own query: nothing reaches a client. */
  private onOwnData(chunk: Buffer, from: number): void {
    const cur = this.cursor;
    const end = chunk.length;
    let pos = from;
    while (pos < end || cur.pending) {
      pos = cur.advance(chunk, pos);
      if (cur.event === CursorEvent.Header) {
        if (this.state === ServerState.Idle && cur.type !== N && cur.type !== A && cur.type !== S && cur.type !== E) {
          this.close(`unexpected message '${String.fromCharCode(cur.type)}' from an idle server`);
          return;
        }
        continue;
      }
      if (cur.event !== CursorEvent.Message) continue;
      if (cur.type === S) {
        this.onParameterStatus(cur.body, cur.bodyStart, cur.bodyEnd, this.internalFor);
      } else if (cur.type === E) {
        const msg = decodeBackendMessage(E, cur.body, cur.bodyStart, cur.bodyEnd);
        const fields = msg.type === "ErrorResponse" ? msg.fields : new Map<string, string>();
        if (this.state === ServerState.Idle || fields.get("V") === "FATAL" || fields.get("S") === "FATAL") {
          this.close(`server error while ${this.state}: ${fields.get("M") ?? "unknown"}`);
          return;
        }
        this.internalError ??= fields.get("M") ?? "error";
      } else if (cur.type === Z && this.state === ServerState.Internal) {
        this.status = cur.body[cur.bodyStart]!;
        if (--this.internalOwed === 0) {
          const done = this.internalDone!;
          const result: InternalResult = { status: this.status, error: this.internalError };
          this.internalDone = null;
          this.internalError = null;
          this.state = ServerState.Idle;
          done(result);
          // The continuation may have linked this server to a client: the rest of the chunk is its.
          if (pos < end) this.onData(chunk.subarray(pos));
          return;
        }
      }
    }
  }

  /** The client whose parameters a pgmux-owned query is setting, so reported values update it too. */
  private internalFor: ClientSession | null = null;

  /**
   * Runs `bytes` (pgmux's own messages expecting `replies` ReadyForQuery) and swallows every reply; calls
   * `done` after the last one. `forClient`: the client the query prepares the server for.
   */
  runInternal(
    bytes: Buffer,
    replies: number,
    now: number,
    done: (result: InternalResult) => void,
    forClient: ClientSession | null = null,
  ): void {
    this.state = ServerState.Internal;
    this.stateSince = now;
    this.internalOwed = replies;
    this.internalError = null;
    this.internalFor = forClient;
    this.internalDone = done;
    if (bytes.length > 0) this.socket.write(bytes);
  }

  runQuery(sql: string, now: number, done: (result: InternalResult) => void, forClient?: ClientSession): void {
    this.runInternal(encodeQuery({ query: sql }), 1, now, done, forClient ?? null);
  }

  /**
   * RESET ALL ran: parameters the server does not report are back to its defaults, which pgmux does not
   * know, so they are forgotten and set again for whichever client needs them.
   */
  forgetUnreportedParameters(): void {
    for (const name of [...this.params.keys()]) if (!isReportedParameter(name)) this.params.delete(name);
  }

  /** Starts carrying `client`'s traffic. */
  activate(client: ClientSession, now: number): void {
    this.client = client;
    this.state = ServerState.Active;
    this.stateSince = now;
    this.lastUsedAt = now;
  }

  /** Back to idle (the pool has unlinked the client). */
  deactivate(now: number): void {
    this.client = null;
    this.internalFor = null;
    this.state = ServerState.Idle;
    this.stateSince = now;
    this.lastUsedAt = now;
  }

  /** True while no message is half-received: the server may change hands only between messages. */
  get atMessageBoundary(): boolean {
    return this.cursor.atBoundary;
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  close(reason: string): void {
    if (this.state === ServerState.Closed) return;
    if (this.closeReason === "") this.closeReason = reason;
    this.socket.destroy();
  }

  private onClose(): void {
    const wasLoggingIn = this.state === ServerState.Connecting || this.state === ServerState.Login;
    const previous = this.state;
    this.state = ServerState.Closed;
    if (this.closeReason === "") this.closeReason = "server closed the connection";
    const done = this.internalDone;
    this.internalDone = null;
    this.pool.serverClosed(this, wasLoggingIn, previous);
    if (done !== null) done({ status: -1, error: this.closeReason });
  }
}
