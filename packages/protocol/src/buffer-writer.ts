/**
 * Builds one or more messages into a growable buffer: `begin(type)` reserves the header, fields are
 * appended, `end()` backfills the length (which counts itself but not the type byte). `finish()` returns a
 * copy of what was written and resets the writer, so one writer can be reused for every message.
 */
export class BufferWriter {
  private buf: Buffer;
  private pos = 0;
  private headerAt = -1;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Starts a typed message (`type` is its type byte) or, with `type` null, an untyped startup-family one. */
  begin(type: number | null): this {
    if (type !== null) this.byte(type);
    this.headerAt = this.pos;
    return this.int32(0);
  }

  end(): this {
    if (this.headerAt < 0) throw new Error("BufferWriter.end() without begin()");
    this.buf.writeInt32BE(this.pos - this.headerAt, this.headerAt);
    this.headerAt = -1;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  uint16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** A string followed by NUL. A NUL inside the string cannot be represented and is rejected. */
  cstring(s: string): this {
    if (s.includes("\0")) throw new RangeError("a protocol string cannot contain a NUL byte");
    const n = Buffer.byteLength(s, "utf8");
    this.ensure(n + 1);
    this.pos += this.buf.write(s, this.pos, "utf8");
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Buffer {
    if (this.headerAt >= 0) throw new Error("BufferWriter.finish() inside an unfinished message");
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }
}
