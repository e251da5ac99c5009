import { ProtocolError } from "./protocol-error.js";

/**
 * A cursor over one message body, `buf[start, end)`. Every read is bounds-checked and a read past the end
 * raises ProtocolError: a decoder never trusts a count or a length it read from the wire. Strings are
 * decoded as UTF-8 (the pooler's encoding on both legs; client_encoding is not re-coded by a proxy).
 */
export class BufferReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new ProtocolError(`message ends before its ${what} (needs ${n} bytes, ${this.end - this.pos} left)`);
    }
  }

  byte(what = "byte"): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  int16(what = "int16"): number {
    this.need(2, what);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(what = "uint16"): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(what = "int32"): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(what = "uint32"): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A NUL-terminated string. */
  cstring(what = "string"): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new ProtocolError(`${what} is not NUL-terminated`);
    const s = this.buf.toString("utf8", this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** n raw bytes, as a view (no copy): copy it if you keep it beyond the current message. */
  bytes(n: number, what = "bytes"): Buffer {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** All bytes left, as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** Raises unless the body was consumed exactly: trailing bytes are as malformed as missing ones. */
  done(what: string): void {
    if (this.pos !== this.end) throw new ProtocolError(`${what} has ${this.end - this.pos} unexpected trailing bytes`);
  }
}
