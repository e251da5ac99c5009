import type net from "node:net";
import {
  decodeStartupFamily,
  encodeBackendKeyData,
  encodeCopyFail,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeQuery,
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
import {
  CLOSE_NOTHING,
  ClientStatements,
  closeStatement,
  cstringEnd,
  describeStatement,
  MAX_CLIENT_STATEMENTS,
  rewriteBind,
  rewriteParseText,
  statementName,
} from "./client-statements.js";
import { CursorEvent, MessageCursor, messageHeader } from "./message-cursor.js";
import type { Pool } from "./pool.js";
import type { Pooler } from "./pooler.js";
import { formatPoolerMessage, type PoolerErrorCode, PoolerErrors } from "./pooler-errors.js";
import type { PreparedStatement } from "./prepared-statements.js";
import { readBuffer } from "./read-buffers.js";
import { ReplyQueue, Slot } from "./reply-queue.js";
import type { ServerConnection } from "./server-connection.js";
import type { ScramKeys } from "./server-login.js";
import { analyzeSessionEffects, type SessionEffect } from "./session-effects.js";
import { firstPin, refusalSql, SessionState } from "./session-state.js";
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
/** Where pgmux leaves clients' statements alone, nothing from the client needs its body read: headers only. */
const PEEK_NONE = new Uint8Array(256);
/** In transaction and statement pools, query texts are read whole for the session state they create. */
const PEEK_TEXTS = new Uint8Array(256);
PEEK_TEXTS[T.Query] = PEEK_TEXTS[T.Parse] = 1;
/** Where prepared statements are carried across servers, the messages that name one are read whole too. */
const PEEK_STATEMENTS = new Uint8Array(256);
for (const t of [T.Query, T.Parse, T.Bind, T.Describe, T.Close]) PEEK_STATEMENTS[t] = 1;
/** Messages whose body is empty by definition: one with a body would be read differently by the server. */
const EMPTY_BODY = new Uint8Array(256);
for (const t of [T.Sync, T.Flush, T.CopyDone, T.Terminate]) EMPTY_BODY[t] = 1;
/** Most bytes a client may have read ahead of a server being linked, beyond one socket chunk. */
const MAX_PENDING_BYTES = 256 * 1024;
/** Most bytes of one exchange kept for sending it again after a stale statement (see retryStaleStatement). */
const MAX_JOURNAL_BYTES = 1024 * 1024;

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
  /** What waits for a server: the client's bytes, and statements to prepare on it as needed. */
  private pending: (Buffer | StatementStep)[] = [];
  private pendingBytes = 0;
  private closing = false;
  /**
   * In pools that carry prepared statements across servers: the client's statement names, and the order
   * of replies owed for what was written on its behalf (to drop replies to pgmux's own messages and to
   * answer for the messages it did not need to send). Null elsewhere.
   */
  statements: ClientStatements | null = null;
  replies: ReplyQueue | null = null;
  /** In transaction and statement pools: the SETs and pins this client's statements created. Else null. */
  session: SessionState | null = null;

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
    if (pool.mode !== "session") {
      this.session = new SessionState();
      this.cursor.peek = PEEK_TEXTS;
      this.cursor.maxPeekBytes = this.pooler.settings.maxPacketSize;
    }
    if (pool.statements !== null) {
      this.statements = new ClientStatements(pool.statements);
      this.replies = new ReplyQueue();
      this.cursor.peek = PEEK_STATEMENTS;
    }
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
    const q = this.replies;
    const server = this.state === ClientState.Active ? this.server : null;
    // Rewriting may cut one chunk into several writes: they leave together, in one system call.
    if (q !== null && server !== null) this.batching = true;
    try {
      this.scanRequests(chunk, server);
    } finally {
      if (this.batching) this.endBatch(server!);
    }
    // What was sent may have balanced the books without a reply to come: the CopyDone that ends a COPY the
    // server already rejected (its ReadyForQuery came first), or a Flush.
    const linked = this.server;
    if (linked !== null && this.owed === 0 && this.state === ClientState.Active && this.releasable(linked.status)) {
      this.pool!.release(linked);
    }
  }

  /** The loop of onRequestData: walks the chunk's messages, keeping the books, and sends what is for the server. */
  private scanRequests(chunk: Buffer, server: ServerConnection | null): void {
    const cur = this.cursor;
    const q = this.replies;
    const end = chunk.length;
    let pos = 0;
    /** Start of the bytes not yet sent on: messages answered here or rewritten are cut out of the chunk. */
    let from = 0;
    /** Where the current message began in this chunk; -1 when it began in an earlier one. */
    let messageStart = cur.atBoundary ? 0 : -1;
    /** Some messages are read whole here, so an unfinished one may be held back at the chunk's end. */
    const tracking = cur.peek !== PEEK_NONE;
    while (pos < end || cur.pending) {
      if (cur.atBoundary) messageStart = pos;
      pos = cur.advance(chunk, pos);
      if (cur.event === CursorEvent.Message) {
        // Only transaction and statement pools read bodies: query texts, and messages naming a statement.
        from = this.onStatementMessage(chunk, from, messageStart, pos);
        continue;
      }
      if (cur.event !== CursorEvent.Header) continue;
      if (cur.length !== 4 && EMPTY_BODY[cur.type] === 1) {
        throw new ProtocolError(`${describeType(cur.type)} message with a body of ${cur.length - 4} bytes`);
      }
      if (tracking && messageStart < 0 && cur.peek[cur.type] !== 1) {
        // Its first header bytes were held back with the previous chunk (it might have been a message to
        // rewrite): they go now, whole.
        this.send(messageHeader(cur.type, cur.length));
        from = pos;
      }
      switch (cur.type) {
        case T.Query:
        case T.FunctionCall:
          if (this.unsynced) this.booksReliable = false;
          if (this.owed++ === 0) this.queryStartedAt = this.pooler.now();
          if (q !== null) this.pushSlot(Slot.Simple, null);
          if (this.session !== null) this.session.requestsSent++;
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
            if (q !== null) this.pushSlot(Slot.Sync, null);
            if (this.session !== null) this.session.requestsSent++;
          }
          this.unsynced = false;
          break;
        case T.Execute:
          this.unsynced = true;
          if (q !== null) this.pushSlot(Slot.Execute, null);
          break;
        case T.Parse:
        case T.Bind:
        case T.Describe:
        case T.Close:
          // With statements carried across servers these are handled whole, at their Message event.
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
          if (this.batching) this.endBatch(server!);
          this.close("client sent Terminate", true);
          return;
        }
        default:
          throw new ProtocolError(`unexpected message type ${describeType(cur.type)} from the client`);
      }
    }
    let stop = end;
    if (tracking && !cur.atBoundary && (cur.inHeader || cur.peek[cur.type] === 1)) {
      // A message that may need rewriting is unfinished: its bytes so far wait for the rest of it.
      stop = messageStart < 0 ? from : messageStart;
    }
    if (from === 0 && stop === end) this.send(chunk);
    else if (from < stop) this.send(chunk.subarray(from, stop));
  }

  /**
   * A Parse, Bind, Describe or Close read whole, in a pool that carries prepared statements: the ones that
   * name a statement of the client's are rewritten to pgmux's name for it, preceded where needed by the
   * Parse that creates it on this server. Returns where the unsent bytes of the chunk now start.
   */
  private onStatementMessage(chunk: Buffer, from: number, messageStart: number, pos: number): number {
    const cur = this.cursor;
    const body = cur.body;
    const start = cur.bodyStart;
    const end = cur.bodyEnd;
    /** The message lies whole in this chunk (else its bytes so far were held back and must be re-sent). */
    const whole = messageStart >= 0;
    if (cur.type === T.Query) {
      // The text ends at its NUL, the body's last byte.
      const refused = this.onQueryText(body, start, end - 1, this.session!.requestsSent, null);
      if (refused === null) return whole ? from : this.resendWhole(pos);
      this.sendBefore(chunk, from, messageStart);
      this.send(refused);
      return pos;
    }
    this.unsynced = true;
    switch (cur.type) {
      case T.Parse: {
        const nameEnd = cstringEnd(body, start, end, "Parse statement name");
        const textEnd = cstringEnd(body, nameEnd + 1, end, "Parse query text");
        const refused = this.onQueryText(body, nameEnd + 1, textEnd, this.session!.requestsSent + 1, {
          nameEnd,
          textEnd,
        });
        if (refused !== null) {
          // The refusal is parsed in the statement's place: the client meets its error when it runs it.
          this.sendBefore(chunk, from, messageStart);
          this.send(refused);
          if (this.replies !== null) this.pushSlot(Slot.Parse, null);
          this.statements?.forget(statementName(body, start, nameEnd));
          return pos;
        }
        if (nameEnd === start || this.statements === null) {
          if (this.replies !== null) this.pushSlot(Slot.Parse, null);
          break;
        }
        const statements = this.statements;
        const statement = statements.cache.statementFor(body, nameEnd + 1, end);
        statements.define(statementName(body, start, nameEnd), statement);
        if (statements.size > MAX_CLIENT_STATEMENTS) {
          throw new ProtocolError(`more than ${MAX_CLIENT_STATEMENTS} prepared statements on one connection`);
        }
        if (
          statement.validated &&
          !this.textHadEffects &&
          whole &&
          this.answersAlone(from, messageStart + 5, chunk.length)
        ) {
          // A text some server has already accepted, from a client holding no server: nothing to ask.
          // Taking a server here could wait on clients that hold theirs until this one answers (pgbench
          // -M prepared prepares synchronously, one connection at a time, on a thread of many clients).
          this.socket.write(PrebuiltBackendMessage.ParseComplete);
          this.unsynced = false;
          return pos;
        }
        this.sendBefore(chunk, from, messageStart);
        this.statementStep(statement, true);
        return pos;
      }
      case T.Bind: {
        const portalEnd = cstringEnd(body, start, end, "Bind portal name");
        const nameEnd = cstringEnd(body, portalEnd + 1, end, "Bind statement name");
        const statement =
          nameEnd === portalEnd + 1 ? undefined : this.statements!.get(statementName(body, portalEnd + 1, nameEnd));
        if (statement === undefined) {
          this.pushSlot(Slot.Bind, null);
          break;
        }
        this.sendBefore(chunk, from, messageStart);
        this.statementStep(statement, false);
        this.pushSlot(Slot.Bind, statement);
        for (const part of rewriteBind(body, start, portalEnd, nameEnd + 1, end, statement, whole)) this.send(part);
        return pos;
      }
      case T.Describe:
      case T.Close: {
        const kind = body[start];
        const nameEnd = cstringEnd(body, start + 1, end, `${describeType(cur.type)} name`);
        const named = kind === 0x53 /* 'S' */ && nameEnd > start + 1;
        const name = named ? statementName(body, start + 1, nameEnd) : "";
        if (cur.type === T.Describe) {
          const statement = named ? this.statements!.get(name) : undefined;
          if (statement === undefined) {
            this.pushSlot(Slot.Describe, null);
            break;
          }
          this.sendBefore(chunk, from, messageStart);
          this.statementStep(statement, false);
          this.pushSlot(Slot.Describe, null);
          this.send(describeStatement(statement));
          return pos;
        }
        if (!named || !this.statements!.forget(name)) {
          this.pushSlot(Slot.Close, null);
          break;
        }
        if (whole && this.answersAlone(from, messageStart + 5, chunk.length)) {
          // Nothing is on its way to a server: the client's name is gone, and that is the whole answer.
          this.socket.write(PrebuiltBackendMessage.CloseComplete);
          this.unsynced = false;
          return pos;
        }
        this.pushSlot(Slot.Close, null);
        this.sendBefore(chunk, from, messageStart);
        this.send(CLOSE_NOTHING);
        return pos;
      }
    }
    return whole ? from : this.resendWhole(pos);
  }

  /** The current message passes unchanged, but its bytes were split across chunks: they go now, in one piece. */
  private resendWhole(pos: number): number {
    const cur = this.cursor;
    this.send(Buffer.concat([messageHeader(cur.type, cur.length), cur.body.subarray(cur.bodyStart, cur.bodyEnd)]));
    return pos;
  }

  /** Set by onQueryText: the text it last read changes session state. */
  private textHadEffects = false;

  /**
   * Reads a query text (of a Query, or of a Parse when `parse` says where its parts end) for the session
   * state it creates, to be applied once request number `request` succeeds. Returns the message to send
   * instead when the pool refuses such state (session_state = error), else null.
   */
  private onQueryText(
    body: Buffer,
    start: number,
    end: number,
    request: number,
    parse: { readonly nameEnd: number; readonly textEnd: number } | null,
  ): Buffer | null {
    const effects = analyzeSessionEffects(body, start, end);
    this.textHadEffects = effects !== null;
    if (effects === null) return null;
    const policy = this.pool!.sessionState;
    const pin = firstPin(effects);
    if (pin !== undefined && policy === "error") {
      this.pool!.stats.refusedSessionState++;
      const sql = refusalSql(pin.reason);
      if (parse === null) return encodeQuery({ query: sql });
      return rewriteParseText(body, this.cursor.bodyStart, parse.nameEnd, parse.textEnd, this.cursor.bodyEnd, sql);
    }
    this.session!.expect(request, policy === "allow" ? effects.filter((e) => e.kind !== "pin") : effects);
    return null;
  }

  /** Sends the chunk's bytes before the current message (the ones before it still unsent). */
  private sendBefore(chunk: Buffer, from: number, messageStart: number): void {
    if (messageStart > from) this.send(chunk.subarray(from, messageStart));
  }

  /**
   * A slot in the reply order. While the server skips to the next Sync after an error, nothing it skips
   * will be answered, so only a Sync gets a slot. Returns its sequence number, or -1.
   */
  private pushSlot(kind: Slot, statement: PreparedStatement | null): number {
    const q = this.replies!;
    if (q.skipping) {
      if (kind !== Slot.Sync) return -1;
      q.skipping = false;
    }
    return q.push(kind, statement);
  }

  /**
   * The client's Parse of `statement` (`clientParse`), or the need for it before a Bind or Describe: on a
   * server that holds it, nothing is sent (and the client's ParseComplete is pgmux's to give); on one that
   * does not, its Parse is. Decided now if a server is linked, else when one is.
   */
  private statementStep(statement: PreparedStatement, clientParse: boolean): void {
    const seq = this.pushSlot(clientParse ? Slot.PendingParse : Slot.PendingEnsure, statement);
    if (this.state === ClientState.Active && this.server !== null) {
      this.settleStatement(this.server, seq, statement, clientParse);
    } else {
      this.hold({ seq, statement, clientParse });
    }
  }

  private settleStatement(server: ServerConnection, seq: number, statement: PreparedStatement, clientParse: boolean) {
    const q = this.replies!;
    const held = server.statements!;
    const stats = this.pool!.statements!.stats;
    if (seq < 0 || q.skipping) {
      // The server is skipping to the next Sync: whatever pgmux sent would be ignored.
      if (seq >= 0) q.set(seq, Slot.Skip);
      return;
    }
    if (held.use(statement)) {
      stats.hits++;
      q.set(seq, clientParse ? Slot.EmitParseComplete : Slot.Skip);
      if (q.head === seq && server.atMessageBoundary) this.emitReadyReplies();
      return;
    }
    stats.misses++;
    held.add(statement);
    q.set(seq, clientParse ? Slot.Parse : Slot.SwallowParse);
    if (!this.toServer(server, statement.parse)) this.socket.pause();
  }

  /**
   * Sends the replies pgmux owes in the server's place once every earlier reply has reached the client:
   * called where the server's stream is between messages.
   */
  emitReadyReplies(): void {
    const q = this.replies!;
    while (q.size > 0) {
      const kind = q.headKind;
      if (kind === Slot.Skip) {
        q.shift();
      } else if (kind === Slot.EmitParseComplete) {
        q.shift();
        const bytes = PrebuiltBackendMessage.ParseComplete;
        if (this.trace !== null) this.trace.record(TraceDirection.B2F, bytes, 0, bytes.length);
        this.socket.write(bytes);
        this.repliesForwarded++;
      } else {
        return;
      }
    }
  }

  /**
   * The server answered the head slot with an ErrorResponse. In an extended-protocol exchange it now skips
   * every message up to the next Sync: what those would have done to its statements did not happen, and
   * their replies (pgmux's own included) never come.
   */
  replyError(server: ServerConnection): void {
    const q = this.replies!;
    if (q.size === 0) return;
    const kind = q.headKind;
    if (kind === Slot.Simple) return;
    this.undoSlot(server, kind, q.headRef);
    q.shift();
    while (q.size > 0 && q.headKind !== Slot.Sync) {
      this.undoSlot(server, q.headKind, q.headRef);
      q.shift();
    }
    if (q.size === 0) q.skipping = true;
  }

  /**
   * The server answered the head slot, a Bind of a statement pgmux prepared, with "cached plan must not
   * change result type" (0A000: a table it reads changed shape). If the exchange began outside a
   * transaction and nothing of it reached the client yet, the statement is prepared afresh and the
   * exchange sent again, once: the client sees the new shape and no error. Returns whether it did so
   * (the ErrorResponse and the skipped exchange's ReadyForQuery are then pgmux's to swallow).
   */
  retryStaleStatement(server: ServerConnection): boolean {
    const q = this.replies!;
    const statement = q.headRef;
    if (
      statement === null ||
      q.headKind !== Slot.Bind ||
      this.retried ||
      !this.journalOn ||
      this.repliesForwarded > 0 ||
      server.status !== TransactionStatus.Idle ||
      this.copyIn ||
      !this.cursor.atBoundary ||
      q.kindAt(q.tail - 1) !== Slot.Sync
    ) {
      return false;
    }
    for (let seq = q.head; seq < q.tail - 1; seq++) if (q.kindAt(seq) === Slot.Sync) return false;
    this.retried = true;
    // In reply order: the skipped exchange's ReadyForQuery, the Close and Parse that renew the statement.
    q.unshift(Slot.SwallowParse, statement);
    q.unshift(Slot.SwallowClose, statement);
    q.unshift(Slot.SwallowSync, null);
    const journal = this.journal.splice(0);
    this.journalOn = false;
    server.socket.cork();
    server.write(closeStatement(statement));
    server.write(statement.parse);
    for (const bytes of journal) server.write(bytes);
    server.socket.uncork();
    this.log.debug({ statement: statement.serverName }, "statement went stale; prepared again and retried");
    return true;
  }

  private undoSlot(server: ServerConnection, kind: number, statement: PreparedStatement | null): void {
    if (statement === null) return;
    if (kind === Slot.Parse || kind === Slot.SwallowParse) server.statements!.delete(statement);
    else if (kind === Slot.SwallowClose) server.statements!.add(statement);
  }

  /** Whether a server left by this client may hold statements pgmux cannot account for. */
  get statementsUnsettled(): boolean {
    const q = this.replies;
    if (q === null) return false;
    for (let seq = q.head; seq < q.tail; seq++) {
      const kind = q.kindAt(seq);
      if (kind === Slot.Parse || kind === Slot.SwallowParse || kind === Slot.SwallowClose) return true;
    }
    return false;
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
      if (!this.toServer(server, bytes)) this.socket.pause();
      return;
    }
    this.hold(bytes);
  }

  /**
   * Writes the client's bytes (or a Parse made for it) to its server. In pools that carry prepared
   * statements, what an exchange that began outside a transaction wrote is also kept (by reference) until
   * its ReadyForQuery, so that it can be sent again once if a statement went stale (see retryStaleStatement).
   */
  private toServer(server: ServerConnection, bytes: Buffer): boolean {
    this.pool!.stats.bytesFromClients += bytes.length;
    if (this.journalOn) {
      this.journalBytes += bytes.length;
      if (this.journalBytes > MAX_JOURNAL_BYTES) {
        this.journalOn = false;
        this.journal.length = 0;
      } else {
        this.journal.push(bytes);
      }
    }
    if (this.batching) {
      this.batch.push(bytes);
      return true;
    }
    return server.write(bytes);
  }

  /** While set, toServer collects writes; endBatch sends them (corked when there are several). */
  private batching = false;
  private readonly batch: Buffer[] = [];

  private endBatch(server: ServerConnection): boolean {
    this.batching = false;
    const batch = this.batch;
    let ok = true;
    if (batch.length === 1) {
      ok = server.write(batch[0]!);
    } else if (batch.length > 1) {
      server.socket.cork();
      for (const bytes of batch) ok = server.write(bytes);
      server.socket.uncork();
    }
    batch.length = 0;
    if (!ok) this.socket.pause();
    return ok;
  }

  private readonly journal: Buffer[] = [];
  private journalBytes = 0;
  private journalOn = false;
  /** Replies of the current exchange that reached the client (pgmux's own answers included). */
  repliesForwarded = 0;
  /** The current exchange was already sent again once. */
  private retried = false;

  /** A new exchange may start: what it writes is kept, if it starts outside a transaction. */
  private resetJournal(idle: boolean): void {
    this.journal.length = 0;
    this.journalBytes = 0;
    this.journalOn = idle && this.replies !== null;
    this.repliesForwarded = 0;
    this.retried = false;
  }

  /** Keeps what is for a server until one is linked, asking the pool for one if the client had none. */
  private hold(item: Buffer | StatementStep): void {
    this.pending.push(item);
    this.pendingBytes += Buffer.isBuffer(item) ? item.length : item.statement.parse.length;
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
    if (this.replies !== null) {
      this.evictStatements(server);
      this.batching = true;
    }
    for (const item of held) {
      if (Buffer.isBuffer(item)) {
        ok = this.toServer(server, item);
      } else {
        this.settleStatement(server, item.seq, item.statement, item.clientParse);
      }
    }
    if (this.replies !== null) {
      ok = this.endBatch(server);
      this.emitReadyReplies();
    }
    if (ok) this.socket.resume();
    // What was held may need no reply at all (CopyData after a COPY the server ended): nothing to wait for.
    if (this.owed === 0 && this.releasable(server.status)) this.pool!.release(server);
  }

  /**
   * Keeps the server within max_prepared_statements: the least recently used statements beyond it are
   * closed before anything of this client's is written (their CloseComplete swallowed), so no statement
   * this client is about to use is closed under it.
   */
  private evictStatements(server: ServerConnection): void {
    const evicted = server.statements!.takeOverflow();
    if (evicted === null) return;
    const q = this.replies!;
    for (let i = evicted.length - 1; i >= 0; i--) q.unshift(Slot.SwallowClose, evicted[i]!);
    for (const statement of evicted) server.write(closeStatement(statement));
    this.pool!.statements!.stats.evictions += evicted.length;
  }

  /**
   * Server → client bytes. Called with whole chunks (or their head, up to a releasing ReadyForQuery).
   */
  forward(bytes: Buffer): void {
    if (this.trace !== null) {
      this.trace.record(TraceDirection.B2F, bytes, 0, bytes.length);
      readBuffer.retained = true;
    }
    this.pool!.stats.bytesFromServers += bytes.length;
    if (!this.socket.write(bytes)) this.server?.pauseReading();
    // Bytes the socket could not send at once still point into the server's read buffer.
    if (this.socket.writableLength > 0) readBuffer.retained = true;
  }

  /**
   * A ReadyForQuery arrived. Returns true when the server should go back to the pool now (after the bytes
   * up to it are forwarded).
   */
  readyForQuery(status: number): boolean {
    const pool = this.pool!;
    if (this.session !== null) {
      const effects = this.session.ready(status);
      if (effects !== null) this.applyEffects(effects);
    }
    // A server in COPY IN sends no ReadyForQuery: one means the COPY is over, whether or not the client
    // ever sent CopyDone (a client may move on after the server rejected the COPY).
    this.copyIn = false;
    if (this.owed > 0) this.owed--;
    if (this.syncsOwed > this.owed) this.syncsOwed = this.owed;
    if (this.owed === 0) this.resetJournal(status === TransactionStatus.Idle);
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

  /**
   * Session state that held on the linked server: the client's SETs (the server now has exactly the
   * client's), pins counted, and prepared statements the server dropped (DISCARD ALL, DEALLOCATE ALL).
   */
  private applyEffects(effects: readonly SessionEffect[]): void {
    const session = this.session!;
    const wasPinned = session.pins;
    const { resetAll, statementsGone } = session.apply(effects);
    const server = this.server;
    if (server !== null) {
      server.sessionSets.clear();
      for (const [name, sql] of session.sets) server.sessionSets.set(name, sql);
      if (resetAll) server.forgetUnreportedParameters();
      if (statementsGone) server.statements?.clear();
    }
    if (statementsGone) this.statements?.clear();
    const pool = this.pool!;
    for (const reason of session.pins.keys()) {
      if (!wasPinned.has(reason)) {
        pool.pinsByReason.set(reason, (pool.pinsByReason.get(reason) ?? 0) + 1);
        this.log.debug({ reason }, "client pinned to its server");
      }
    }
  }

  /** The server reported an error while this client's request ran. */
  serverError(): void {
    this.session?.error();
  }

  /** Whether the linked server may go back to the pool now: nothing owed or half-sent, outside a transaction. */
  releasable(status: number): boolean {
    const server = this.server;
    return (
      server !== null &&
      (this.pool!.mode !== "session" || this.pool!.closing) &&
      (!(this.session?.pinned ?? false) || this.pool!.closing) &&
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
    this.journalOn = false;
    this.journal.length = 0;
    // Every Sync still owed was sent after the Execute that started this COPY, so the server reads it in
    // COPY IN mode and ignores it: those ReadyForQuery will never come.
    this.copyInExtended = this.syncsOwed > 0;
    if (this.syncsOwed > 0) {
      const dropped = this.syncsOwed;
      this.owed -= this.syncsOwed;
      this.syncsOwed = 0;
      this.replies?.dropAfterHead(Slot.Sync);
      this.session?.forgetRequests(dropped);
    }
  }

  /** The pool took the server back. */
  unlinked(): void {
    this.replies?.clear();
    this.resetJournal(true);
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

/** A statement to settle on the server once one is linked (see statementStep). */
interface StatementStep {
  readonly seq: number;
  readonly statement: PreparedStatement;
  readonly clientParse: boolean;
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
