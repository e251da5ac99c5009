import { ProtocolError } from "@pgmux/protocol";

/** What `advance()` has just seen. */
export const CursorEvent = {
  None: 0,
  /** A header is complete: `type` and `length` are set. Fired for every message. */
  Header: 1,
  /** A peeked message is complete: its body is `body[bodyStart, bodyEnd)`, valid until the next advance. */
  Message: 2,
} as const;
export type CursorEvent = (typeof CursorEvent)[keyof typeof CursorEvent];

const HEADER = 5;

/**
 * Walks the typed messages of a stream as its chunks pass through the pooler, reading headers only. The
 * bytes themselves are forwarded by the caller as whole chunks; the cursor never buffers a body, except the
 * body of a type the caller asked to peek at (ReadyForQuery's status byte, ParameterStatus, ...), and that
 * only when it spans chunks and is at most `maxPeekBytes`. Plain integer state, no allocation per message:
 * this runs for every message of every connection.
 */
export class MessageCursor {
  event: CursorEvent = CursorEvent.None;
  /** Type byte of the current message. */
  type = 0;
  /** Its length field (counts itself). */
  length = 0;
  body: Buffer = EMPTY;
  bodyStart = 0;
  bodyEnd = 0;

  private readonly head = Buffer.alloc(HEADER);
  private headFill = 0;
  private bodyLeft = 0;
  private peeking = false;
  private peekBuf: Buffer = EMPTY;
  private peekFill = 0;
  /** A peeked body lies whole in the current chunk: the next advance reports it as a view. */
  private viewPending = false;

  /**
   * @param peek 1 at the index of each type byte whose whole body the caller needs.
   * @param maxMessageBytes a length field above this is a ProtocolError.
   * @param maxPeekBytes a peeked message longer than this is reported by its header only.
   */
  constructor(
    public peek: Uint8Array,
    private readonly maxMessageBytes: number,
    public maxPeekBytes = 64 * 1024,
  ) {}

  /** Part of a header has been read: its type and length are not known yet. */
  get inHeader(): boolean {
    return this.headFill > 0;
  }

  /** True between messages: no header or body bytes of an unfinished message have passed. */
  get atBoundary(): boolean {
    return this.headFill === 0 && this.bodyLeft === 0 && !this.peeking && !this.viewPending;
  }

  /** A peeked message's body is in hand but not yet reported: call advance again even at the chunk's end. */
  get pending(): boolean {
    return this.viewPending;
  }

  /**
   * Consumes bytes of `chunk` from `pos` up to the next event, and returns the position after them. Call it
   * in a loop while `pos < chunk.length || cursor.pending`, looking at `event` after each call.
   */
  advance(chunk: Buffer, pos: number): number {
    if (this.viewPending) {
      this.viewPending = false;
      this.event = CursorEvent.Message;
      return this.bodyEnd;
    }
    const end = chunk.length;
    this.event = CursorEvent.None;
    // A body copied for a rare large message is not kept for the life of the connection.
    if (this.peekBuf.length > RETAINED_PEEK_BYTES && !this.peeking) this.peekBuf = EMPTY;
    if (this.bodyLeft > 0) {
      const take = Math.min(this.bodyLeft, end - pos);
      if (this.peeking) {
        chunk.copy(this.peekBuf, this.peekFill, pos, pos + take);
        this.peekFill += take;
      }
      this.bodyLeft -= take;
      pos += take;
      if (this.bodyLeft === 0 && this.peeking) {
        this.peeking = false;
        this.body = this.peekBuf;
        this.bodyStart = 0;
        this.bodyEnd = this.peekFill;
        this.event = CursorEvent.Message;
      }
      return pos;
    }
    if (this.headFill === 0 && end - pos >= HEADER) {
      this.type = chunk[pos]!;
      this.length = chunk.readUInt32BE(pos + 1);
      pos += HEADER;
    } else {
      const take = Math.min(HEADER - this.headFill, end - pos);
      chunk.copy(this.head, this.headFill, pos, pos + take);
      this.headFill += take;
      pos += take;
      if (this.headFill < HEADER) return pos;
      this.headFill = 0;
      this.type = this.head[0]!;
      this.length = this.head.readUInt32BE(1);
    }
    if (this.length < 4 || this.length > this.maxMessageBytes) {
      throw new ProtocolError(
        this.length < 4
          ? `invalid message length ${this.length}`
          : `message of ${this.length} bytes exceeds the limit of ${this.maxMessageBytes} bytes`,
      );
    }
    const bodyLength = this.length - 4;
    this.event = CursorEvent.Header;
    if (this.peek[this.type] === 1 && bodyLength <= this.maxPeekBytes) {
      if (end - pos >= bodyLength) {
        // Whole body in this chunk: report the header now and the message on the next call, as a view.
        this.pendingView(chunk, pos, pos + bodyLength);
        return pos;
      }
      if (this.peekBuf.length < bodyLength) this.peekBuf = Buffer.allocUnsafe(Math.max(bodyLength, 64));
      this.peeking = true;
      this.peekFill = 0;
    }
    this.bodyLeft = bodyLength;
    return pos;
  }

  private pendingView(chunk: Buffer, start: number, end: number): void {
    this.viewPending = true;
    this.body = chunk;
    this.bodyStart = start;
    this.bodyEnd = end;
  }
}

const EMPTY = Buffer.alloc(0);
/** Largest copy buffer a cursor keeps between messages. */
const RETAINED_PEEK_BYTES = 64 * 1024;

/** The 5 header bytes of a message, for re-sending a header whose bytes arrived split across chunks. */
export function messageHeader(type: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = type;
  b.writeUInt32BE(length, 1);
  return b;
}
