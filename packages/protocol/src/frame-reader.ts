import { ProtocolError } from "./protocol-error.js";

/** The `type` a frame of the untyped startup family (StartupMessage, SSLRequest, …) is delivered with. */
export const UNTYPED = 0;

/**
 * Receives each whole frame. The body is `buf[start, end)`: for a typed message it follows the 4-byte
 * length; for an untyped one it starts at the 4-byte version/request code. The bytes are a view that is
 * valid only during the call (they may be the caller's chunk or the reader's own buffer): copy what you keep.
 */
export type FrameHandler = (type: number, buf: Buffer, start: number, end: number) => void;

export interface FrameReaderOptions {
  /** Largest accepted length field of a typed message (it counts itself, not the type byte). */
  readonly maxMessageBytes: number;
  /** Largest accepted untyped frame; PostgreSQL refuses startup packets over 10,000 bytes. */
  readonly maxStartupBytes?: number;
  /** Start by reading an untyped frame (a server socket's first message). */
  readonly untyped?: boolean;
}

const DEFAULT_MAX_STARTUP_BYTES = 10_000;
const TYPED_HEADER = 5;
const UNTYPED_HEADER = 4;
/** A split body is copied into a buffer that grows with what has arrived, never sized by the claimed length. */
const FIRST_BODY_CHUNK = 64 * 1024;

/**
 * Splits a byte stream, pushed chunk by chunk as the socket delivers it, into protocol frames.
 *
 * A frame that lies inside one chunk is delivered as a view of that chunk (no copy, no allocation). Only a
 * header or body that spans chunks is copied, because the caller may reuse its chunk buffer after `push`
 * returns. A length over the limit is a ProtocolError as soon as its header is complete, before any of its
 * body is buffered, so a hostile length never grows memory. After a ProtocolError the stream is unusable.
 */
export class FrameReader {
  /** Read the next frame as untyped. The consumer may flip it from inside the handler (e.g. after SSLRequest). */
  untyped: boolean;

  private readonly maxMessageBytes: number;
  private readonly maxStartupBytes: number;
  private readonly header = Buffer.alloc(TYPED_HEADER);
  private headerFill = 0;
  private bodyType = -1;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private bodyLength = 0;
  private stopped = false;
  private failed = false;
  private rest: Buffer | null = null;

  constructor(
    private readonly onFrame: FrameHandler,
    options: FrameReaderOptions,
  ) {
    if (!(options.maxMessageBytes >= 5)) throw new RangeError("maxMessageBytes must be at least 5");
    this.maxMessageBytes = options.maxMessageBytes;
    this.maxStartupBytes = options.maxStartupBytes ?? DEFAULT_MAX_STARTUP_BYTES;
    this.untyped = options.untyped ?? false;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Stops delivering frames; called from inside the handler. The bytes of the current chunk after the frame
   * being handled are kept, untouched, for `takeRest()` — for a TLS upgrade they must not be read as
   * protocol.
   */
  stop(): void {
    this.stopped = true;
  }

  /** After `stop()`: the bytes that followed the last delivered frame in its chunk (a view), or null. */
  takeRest(): Buffer | null {
    const rest = this.rest;
    this.rest = null;
    return rest;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw new ProtocolError("stream already failed");
    if (this.stopped) throw new Error("FrameReader.push() after stop()");
    const end = chunk.length;
    let pos = 0;
    if (this.body !== null) {
      pos = this.fillBody(chunk, 0);
      if (this.body !== null) return;
      if (this.stopped) {
        this.keepRest(chunk, pos);
        return;
      }
    }
    while (pos < end) {
      let type: number;
      let length: number;
      const headerSize = this.untyped ? UNTYPED_HEADER : TYPED_HEADER;
      if (this.headerFill === 0 && end - pos >= headerSize) {
        type = this.untyped ? UNTYPED : chunk[pos]!;
        length = chunk.readUInt32BE(this.untyped ? pos : pos + 1);
        pos += headerSize;
      } else {
        const take = Math.min(headerSize - this.headerFill, end - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < headerSize) return;
        this.headerFill = 0;
        type = this.untyped ? UNTYPED : this.header[0]!;
        length = this.header.readUInt32BE(this.untyped ? 0 : 1);
      }
      this.check(type, length);
      const bodyLength = length - 4;
      if (end - pos >= bodyLength) {
        const start = pos;
        pos += bodyLength;
        this.onFrame(type, chunk, start, pos);
        if (this.stopped) {
          this.keepRest(chunk, pos);
          return;
        }
        continue;
      }
      this.bodyType = type;
      this.bodyLength = bodyLength;
      this.body = Buffer.allocUnsafe(Math.min(bodyLength, Math.max(FIRST_BODY_CHUNK, end - pos)));
      this.bodyFill = 0;
      pos = this.fillBody(chunk, pos);
    }
  }

  private check(type: number, length: number): void {
    if (this.untyped) {
      if (length < 8 || length > this.maxStartupBytes) {
        this.failed = true;
        throw new ProtocolError(`invalid startup packet length ${length} (accepted: 8 to ${this.maxStartupBytes})`);
      }
    } else if (length < 4 || length > this.maxMessageBytes) {
      this.failed = true;
      const name = type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16)}`;
      throw new ProtocolError(
        length < 4
          ? `invalid length ${length} in the header of message ${name}`
          : `message ${name} of ${length} bytes exceeds the limit of ${this.maxMessageBytes} bytes`,
      );
    }
  }

  /** Copies what it can of a split body; delivers it when complete. Returns the position after what it used. */
  private fillBody(chunk: Buffer, pos: number): number {
    let body = this.body!;
    const take = Math.min(this.bodyLength - this.bodyFill, chunk.length - pos);
    if (this.bodyFill + take > body.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.bodyLength, Math.max(body.length * 2, this.bodyFill + take)));
      body.copy(grown, 0, 0, this.bodyFill);
      body = this.body = grown;
    }
    chunk.copy(body, this.bodyFill, pos, pos + take);
    this.bodyFill += take;
    if (this.bodyFill < this.bodyLength) return pos + take;
    const type = this.bodyType;
    this.body = null;
    this.bodyFill = 0;
    this.onFrame(type, body, 0, this.bodyLength);
    return pos + take;
  }

  private keepRest(chunk: Buffer, pos: number): void {
    this.rest = pos < chunk.length ? chunk.subarray(pos) : null;
  }
}
