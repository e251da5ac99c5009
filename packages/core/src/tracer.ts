/**
 * The live protocol trace: every message between a chosen client and its servers, in both directions,
 * named and decoded into one line each (`[F2B] Query {SELECT 1}`, `[B2F] RowDescription {fields: [...]}`).
 *
 * Cost when nobody traces: nothing. A client carries `trace: TraceTap | null`, set only while a
 * subscription matches it; the hot path's whole involvement is `if (this.trace !== null) ...`. While a
 * trace is open, a tap splits the chunks it is handed into messages (copying at most MAX_DECODED_BODY
 * bytes of a message that spans chunks), and decodes only what a subscription has room for: each
 * subscription has a rate limit (token bucket) and a bounded ring buffer, so a busy client cannot make a
 * trace grow without bound or eat the CPU.
 *
 * Masking: parameter values, row values, COPY data, notification payloads and the string after PASSWORD
 * in SQL are shown as `<n bytes>` / `'********'` unless the subscription asked to reveal them; password
 * and SASL messages are masked always.
 */
import {
  type BackendMessage,
  decodeBackendMessage,
  decodeFrontendMessage,
  FrontendMessageType,
  messageName,
  type TypedFrontendMessage,
} from "@pgmux/protocol";

/** Which way a chunk travels: client to server (F2B) or server to client (B2F). */
export const TraceDirection = { F2B: 0, B2F: 1 } as const;
export type TraceDirection = (typeof TraceDirection)[keyof typeof TraceDirection];

/** Which clients a trace follows: every given field must match (an empty filter follows everyone). */
export interface TraceFilter {
  readonly clientId?: number;
  readonly user?: string;
  readonly database?: string;
  readonly applicationName?: string;
}

/** What the tracer needs of a client (ClientSession is one). */
export interface TraceTarget {
  readonly id: number;
  readonly user: string;
  readonly database: string;
  readonly params: ReadonlyMap<string, string>;
  /** The client's own bytes are between messages (nothing half-read). */
  readonly atMessageBoundary: boolean;
  /** Its linked server, whose bytes it is forwarded. */
  readonly server: { readonly atMessageBoundary: boolean } | null;
  trace: TraceTap | null;
}

export interface TraceLine {
  /** Increasing over the tracer's lifetime. */
  readonly seq: number;
  /** Epoch milliseconds. */
  readonly time: number;
  readonly clientId: number;
  readonly direction: "F2B" | "B2F";
  /** The message name, as the protocol docs name it. */
  readonly message: string;
  /** `[F2B] Query {SELECT 1}` */
  readonly text: string;
}

export interface TracerOptions {
  /** Wall clock in epoch milliseconds; injected by tests. */
  readonly now?: () => number;
  readonly maxSubscriptions?: number;
}

export interface TraceSubscriptionOptions {
  /** Show parameter and row values instead of their sizes. */
  readonly reveal?: boolean;
  /** Lines kept for a reader that has not drained them yet; the oldest go first. */
  readonly capacity?: number;
  /** Lines per second; a burst of as many is allowed. */
  readonly maxLinesPerSecond?: number;
}

const DEFAULT_CAPACITY = 2000;
const DEFAULT_LINES_PER_SECOND = 500;
const DEFAULT_MAX_SUBSCRIPTIONS = 32;
/** The longest message body decoded; longer ones are shown by name and size. */
const MAX_DECODED_BODY = 16 * 1024;
/** SQL text, values and payloads are shortened to this many characters in a line. */
const MAX_TEXT = 2000;
const MAX_VALUE = 200;

export class TraceLimitError extends Error {}

/**
 * The registry of open traces for one pooler. `targets` is the pooler's live set of clients: opening or
 * closing a subscription walks it once to attach or detach taps; a client logging in asks `tapFor`.
 */
export class Tracer {
  /** Chunks handed to taps. Stays 0 while nobody traces: the proof that the hot path did nothing. */
  chunksRecorded = 0;
  /** Whole messages the taps split out. */
  messagesSeen = 0;
  /** Lines not kept: over a subscription's rate limit, or pushed out of a full ring. */
  linesDropped = 0;
  readonly now: () => number;
  private readonly maxSubscriptions: number;
  private readonly subscriptions = new Set<TraceSubscription>();
  private seq = 0;

  constructor(
    private readonly targets: Iterable<TraceTarget>,
    options: TracerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.maxSubscriptions = options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS;
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Opens a trace; matching clients are tapped at once, and clients logging in later as they arrive. */
  subscribe(filter: TraceFilter, options: TraceSubscriptionOptions = {}): TraceSubscription {
    if (this.subscriptions.size >= this.maxSubscriptions) {
      throw new TraceLimitError(`too many open traces (at most ${this.maxSubscriptions}); close one first`);
    }
    const sub = new TraceSubscription(this, filter, options);
    this.subscriptions.add(sub);
    this.retap();
    return sub;
  }

  /** The tap for a client that has just logged in, or null when no open trace wants it. */
  tapFor(target: TraceTarget): TraceTap | null {
    if (this.subscriptions.size === 0) return null;
    const matches = this.matching(target);
    return matches.length === 0 ? null : new TraceTap(this, target, matches);
  }

  /** @internal Called by TraceSubscription.close(). */
  remove(sub: TraceSubscription): void {
    if (this.subscriptions.delete(sub)) this.retap();
  }

  /** @internal */
  nextSeq(): number {
    return ++this.seq;
  }

  private matching(target: TraceTarget): TraceSubscription[] {
    const out: TraceSubscription[] = [];
    for (const sub of this.subscriptions) if (traceFilterMatches(sub.filter, target)) out.push(sub);
    return out;
  }

  /** Brings every client's tap in line with the open subscriptions, keeping a tap's place in the stream. */
  private retap(): void {
    for (const target of this.targets) {
      const matches = this.subscriptions.size === 0 ? [] : this.matching(target);
      if (matches.length === 0) target.trace = null;
      else if (target.trace !== null) target.trace.subscriptions = matches;
      else target.trace = new TraceTap(this, target, matches);
    }
  }
}

export function traceFilterMatches(filter: TraceFilter, target: TraceTarget): boolean {
  return (
    (filter.clientId === undefined || filter.clientId === target.id) &&
    (filter.user === undefined || filter.user === target.user) &&
    (filter.database === undefined || filter.database === target.database) &&
    (filter.applicationName === undefined || filter.applicationName === (target.params.get("application_name") ?? ""))
  );
}

/** One open trace: a bounded ring of lines, filled by taps, drained by a reader. */
export class TraceSubscription {
  readonly reveal: boolean;
  readonly capacity: number;
  readonly maxLinesPerSecond: number;
  /** Lines this subscription lost (rate limit or full ring). */
  dropped = 0;
  closed = false;
  /** Called (once per batch, asynchronously) when lines arrive; the reader then drains. */
  onLines: (() => void) | null = null;
  private readonly ring: (TraceLine | undefined)[];
  private head = 0;
  private size = 0;
  private tokens: number;
  private refilledAt: number;
  private notifyScheduled = false;

  constructor(
    private readonly tracer: Tracer,
    readonly filter: TraceFilter,
    options: TraceSubscriptionOptions,
  ) {
    this.reveal = options.reveal ?? false;
    this.capacity = Math.max(1, options.capacity ?? DEFAULT_CAPACITY);
    this.maxLinesPerSecond = Math.max(1, options.maxLinesPerSecond ?? DEFAULT_LINES_PER_SECOND);
    this.ring = new Array<TraceLine | undefined>(this.capacity);
    this.tokens = this.maxLinesPerSecond;
    this.refilledAt = tracer.now();
  }

  /** Lines waiting to be drained. */
  get pending(): number {
    return this.size;
  }

  /** Takes one line's worth of the rate limit; false when the subscription is over it. */
  take(now: number): boolean {
    if (this.closed) return false;
    if (this.tokens < 1) {
      const refill = ((now - this.refilledAt) / 1000) * this.maxLinesPerSecond;
      if (refill < 1) return false;
      this.tokens = Math.min(this.maxLinesPerSecond, this.tokens + refill);
      this.refilledAt = now;
    }
    this.tokens--;
    return true;
  }

  push(line: TraceLine): void {
    if (this.size === this.capacity) {
      this.head = (this.head + 1) % this.capacity;
      this.size--;
      this.dropped++;
      this.tracer.linesDropped++;
    }
    this.ring[(this.head + this.size) % this.capacity] = line;
    this.size++;
    if (this.onLines !== null && !this.notifyScheduled) {
      this.notifyScheduled = true;
      setImmediate(() => {
        this.notifyScheduled = false;
        if (!this.closed) this.onLines?.();
      });
    }
  }

  /** Every line kept so far, oldest first; the ring is emptied. */
  drain(): TraceLine[] {
    const out: TraceLine[] = new Array<TraceLine>(this.size);
    for (let i = 0; i < this.size; i++) {
      const at = (this.head + i) % this.capacity;
      out[i] = this.ring[at]!;
      this.ring[at] = undefined;
    }
    this.head = 0;
    this.size = 0;
    return out;
  }

  /** @internal A line this subscription wanted but could not take (rate limit). */
  countDropped(): void {
    this.dropped++;
    this.tracer.linesDropped++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onLines = null;
    this.tracer.remove(this);
  }
}

/** A line as the text view prints it. */
export function formatTraceLine(line: TraceLine): string {
  return `${new Date(line.time).toISOString()} client=${line.clientId} ${line.text}`;
}

/**
 * A traced client's recorder. The engine calls `record` with the bytes it received from the client (F2B)
 * and the bytes it forwards to the client (B2F), exactly as they pass.
 */
export class TraceTap {
  private readonly f2b = new MessageSplitter();
  private readonly b2f = new MessageSplitter();
  private lastServer: object | null;

  constructor(
    private readonly tracer: Tracer,
    private readonly target: TraceTarget,
    public subscriptions: TraceSubscription[],
  ) {
    // A tap attached mid-stream can only start at a message boundary.
    this.f2b.restart(target.atMessageBoundary);
    this.lastServer = target.server;
    this.b2f.restart(target.server === null || target.server.atMessageBoundary);
  }

  record(direction: TraceDirection, chunk: Buffer, from: number, to: number): void {
    this.tracer.chunksRecorded++;
    const target = this.target;
    if (direction === TraceDirection.F2B) {
      // Called before the client reads the chunk: its own cursor says whether the chunk starts a message.
      if (target.atMessageBoundary) this.f2b.restart(true);
      this.f2b.push(chunk, from, to, this, TraceDirection.F2B);
      return;
    }
    const server = target.server;
    if (server !== this.lastServer) {
      // A new link starts between messages.
      this.lastServer = server;
      this.b2f.restart(true);
    }
    this.b2f.push(chunk, from, to, this, TraceDirection.B2F);
    // Called after the server's cursor read the chunk: at a boundary, the next chunk starts a message.
    if (!this.b2f.synced && server !== null && server.atMessageBoundary) this.b2f.restart(true);
  }

  /** @internal One whole message (or the head of a long one) split out of the stream. */
  message(direction: TraceDirection, type: number, buf: Buffer, start: number, end: number, length: number): void {
    const tracer = this.tracer;
    tracer.messagesSeen++;
    const now = tracer.now();
    let masked: string | undefined;
    let revealed: string | undefined;
    for (const sub of this.subscriptions) {
      if (!sub.take(now)) {
        sub.countDropped();
        continue;
      }
      let text: string;
      if (sub.reveal) {
        revealed ??= describeMessage(direction, type, buf, start, end, length, true);
        text = revealed;
      } else {
        masked ??= describeMessage(direction, type, buf, start, end, length, false);
        text = masked;
      }
      sub.push({
        seq: tracer.nextSeq(),
        time: now,
        clientId: this.target.id,
        direction: direction === TraceDirection.F2B ? "F2B" : "B2F",
        message: nameOf(direction, type),
        text,
      });
    }
  }
}

/**
 * Splits a byte stream, handed over chunk by chunk, into typed messages. A message inside one chunk is
 * passed as a view; one that spans chunks is copied, but only its first MAX_DECODED_BODY bytes.
 */
class MessageSplitter {
  synced = false;
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private type = 0;
  /** Body length of the message being read, or -1 between messages. */
  private bodyLength = -1;
  private bodySeen = 0;
  private kept: Buffer | null = null;
  private keptFill = 0;

  restart(synced: boolean): void {
    this.synced = synced;
    this.headerFill = 0;
    this.bodyLength = -1;
    this.kept = null;
  }

  push(chunk: Buffer, from: number, to: number, tap: TraceTap, direction: TraceDirection): void {
    if (!this.synced) return;
    let pos = from;
    while (pos < to) {
      if (this.bodyLength >= 0) {
        const take = Math.min(this.bodyLength - this.bodySeen, to - pos);
        const kept = this.kept!;
        const room = Math.min(take, kept.length - this.keptFill);
        if (room > 0) chunk.copy(kept, this.keptFill, pos, pos + room);
        this.keptFill += room;
        this.bodySeen += take;
        pos += take;
        if (this.bodySeen === this.bodyLength) {
          const length = this.bodyLength;
          this.bodyLength = -1;
          this.kept = null;
          tap.message(direction, this.type, kept, 0, this.keptFill, length);
        }
        continue;
      }
      let type: number;
      let length: number;
      if (this.headerFill === 0 && to - pos >= 5) {
        type = chunk[pos]!;
        length = chunk.readUInt32BE(pos + 1);
        pos += 5;
      } else {
        const take = Math.min(5 - this.headerFill, to - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < 5) return;
        this.headerFill = 0;
        type = this.header[0]!;
        length = this.header.readUInt32BE(1);
      }
      if (length < 4) {
        // Not a message header: the stream is not where we thought; wait for the next known boundary.
        this.synced = false;
        return;
      }
      const bodyLength = length - 4;
      if (to - pos >= bodyLength) {
        tap.message(direction, type, chunk, pos, pos + Math.min(bodyLength, MAX_DECODED_BODY), bodyLength);
        pos += bodyLength;
        continue;
      }
      this.type = type;
      this.bodyLength = bodyLength;
      this.bodySeen = 0;
      this.kept = Buffer.allocUnsafe(Math.min(bodyLength, MAX_DECODED_BODY));
      this.keptFill = 0;
    }
  }
}

// ---- describing messages ----------------------------------------------------------------------------

const F = FrontendMessageType;

function nameOf(direction: TraceDirection, type: number): string {
  if (direction === TraceDirection.F2B && type === F.PasswordMessage) return "PasswordMessage";
  return messageName(direction === TraceDirection.F2B ? "frontend" : "backend", type);
}

/**
 * One message as a trace line: `[F2B] Name {fields}`. `length` is the whole body's length; when it exceeds
 * what `buf[start, end)` holds, the message was too long to decode and is shown by its size.
 */
export function describeMessage(
  direction: TraceDirection,
  type: number,
  buf: Buffer,
  start: number,
  end: number,
  length: number,
  reveal: boolean,
): string {
  const prefix = direction === TraceDirection.F2B ? "[F2B] " : "[B2F] ";
  const name = nameOf(direction, type);
  if (direction === TraceDirection.F2B && type === F.PasswordMessage) return `${prefix}${name} {********}`;
  if (end - start < length) {
    if (direction === TraceDirection.F2B && type === F.Query) {
      const head = sqlText(buf.toString("utf8", start, end), reveal);
      return `${prefix}Query {${head.endsWith("…") ? head : `${head}…`} (${length} bytes)}`;
    }
    return `${prefix}${name} {${length} bytes, not decoded}`;
  }
  try {
    return (
      prefix +
      (direction === TraceDirection.F2B
        ? describeFrontend(decodeFrontendMessage(type, buf, start, end), reveal)
        : describeBackend(decodeBackendMessage(type, buf, start, end), reveal))
    );
  } catch (err) {
    return `${prefix}${name} {undecodable: ${err instanceof Error ? err.message : String(err)}}`;
  }
}

function describeFrontend(m: TypedFrontendMessage, reveal: boolean): string {
  switch (m.type) {
    case "Query":
      return `Query {${sqlText(m.query, reveal)}}`;
    case "Parse":
      return `Parse {statement: ${quote(m.statement)}, query: ${sqlText(m.query, reveal)}, parameterTypes: [${m.parameterTypes.map(typeName).join(", ")}]}`;
    case "Bind":
      return `Bind {portal: ${quote(m.portal)}, statement: ${quote(m.statement)}, parameters: [${m.parameters.map((v) => value(v, reveal)).join(", ")}]}`;
    case "Describe":
      return `Describe {${m.kind === "S" ? "statement" : "portal"} ${quote(m.name)}}`;
    case "Close":
      return `Close {${m.kind === "S" ? "statement" : "portal"} ${quote(m.name)}}`;
    case "Execute":
      return `Execute {portal: ${quote(m.portal)}, maxRows: ${m.maxRows}}`;
    case "CopyData":
      return `CopyData {${bytesOrText(m.data, reveal)}}`;
    case "CopyFail":
      return `CopyFail {${shorten(m.message, MAX_TEXT)}}`;
    case "FunctionCall":
      return `FunctionCall {function: ${m.functionOid}, arguments: [${m.arguments.map((v) => value(v, reveal)).join(", ")}]}`;
    case "PasswordMessage":
    case "SASLInitialResponse":
    case "SASLResponse":
    case "GSSResponse":
      return `${m.type} {********}`;
    default:
      return m.type;
  }
}

function describeBackend(m: BackendMessage, reveal: boolean): string {
  switch (m.type) {
    case "RowDescription":
      return `RowDescription {fields: [${m.fields.map((f) => `${f.name} ${typeName(f.typeOid)}`).join(", ")}]}`;
    case "DataRow":
      return `DataRow {values: [${m.values.map((v) => value(v, reveal)).join(", ")}]}`;
    case "CommandComplete":
      return `CommandComplete {${m.tag}}`;
    case "ReadyForQuery":
      return `ReadyForQuery {${String.fromCharCode(m.status)}}`;
    case "ErrorResponse":
    case "NoticeResponse": {
      const f = m.fields;
      return `${m.type} {${f.get("V") ?? f.get("S") ?? ""} ${f.get("C") ?? ""}: ${shorten(f.get("M") ?? "", MAX_TEXT)}}`;
    }
    case "ParameterStatus":
      return `ParameterStatus {${m.name}=${m.value}}`;
    case "ParameterDescription":
      return `ParameterDescription {types: [${m.parameterTypes.map(typeName).join(", ")}]}`;
    case "NotificationResponse":
      return `NotificationResponse {pid: ${m.processId}, channel: ${quote(m.channel)}, payload: ${reveal ? quote(shorten(m.payload, MAX_VALUE)) : `<${Buffer.byteLength(m.payload)} bytes>`}}`;
    case "CopyInResponse":
    case "CopyOutResponse":
    case "CopyBothResponse":
      return `${m.type} {format: ${m.format === 0 ? "text" : "binary"}, columns: ${m.columnFormats.length}}`;
    case "CopyData":
      return `CopyData {${bytesOrText(m.data, reveal)}}`;
    case "FunctionCallResponse":
      return `FunctionCallResponse {result: ${value(m.result, reveal)}}`;
    case "BackendKeyData":
      return `BackendKeyData {pid: ${m.processId}}`;
    case "NegotiateProtocolVersion":
      return `NegotiateProtocolVersion {newest: 3.${m.newestProtocolVersion & 0xffff}, unrecognized: [${m.unrecognizedOptions.join(", ")}]}`;
    default:
      return m.type;
  }
}

const PASSWORD_LITERAL = /(\bpassword\s+)'(?:[^']|'')*'/gi;

function sqlText(sql: string, reveal: boolean): string {
  const oneLine = sql.replace(/\s+/g, " ").trim();
  return shorten(reveal ? oneLine : oneLine.replace(PASSWORD_LITERAL, "$1'********'"), MAX_TEXT);
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function value(v: Buffer | null, reveal: boolean): string {
  if (v === null) return "NULL";
  if (!reveal) return `<${v.length} ${v.length === 1 ? "byte" : "bytes"}>`;
  const text = v.toString("utf8");
  // Text that survives a round trip and has no control characters is shown as text, anything else as hex.
  if (Buffer.byteLength(text) === v.length && isPlainText(text)) {
    return quote(shorten(text, MAX_VALUE));
  }
  const hex = v.subarray(0, MAX_VALUE / 2).toString("hex");
  return `\\x${hex}${v.length > MAX_VALUE / 2 ? "…" : ""}`;
}

/** No replacement characters (invalid UTF-8) and no control characters other than tab and newlines. */
function isPlainText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f || c === 0xfffd) return false;
  }
  return true;
}

function bytesOrText(data: Buffer, reveal: boolean): string {
  return reveal ? `${data.length} bytes: ${value(data, true)}` : `${data.length} bytes`;
}

/** Names of the built-in types a trace reader meets most, by OID (pg_type.dat). */
const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [16, "bool"],
  [17, "bytea"],
  [18, "char"],
  [19, "name"],
  [20, "int8"],
  [21, "int2"],
  [23, "int4"],
  [25, "text"],
  [26, "oid"],
  [114, "json"],
  [700, "float4"],
  [701, "float8"],
  [1042, "bpchar"],
  [1043, "varchar"],
  [1082, "date"],
  [1083, "time"],
  [1114, "timestamp"],
  [1184, "timestamptz"],
  [1186, "interval"],
  [1700, "numeric"],
  [2950, "uuid"],
  [3802, "jsonb"],
]);

function typeName(oid: number): string {
  if (oid === 0) return "unspecified";
  return TYPE_NAMES.get(oid) ?? `oid ${oid}`;
}
