/**
 * Field shapes that several messages share (counted arrays, nullable values), for the encoders and decoders
 * of both directions. Internal to the package: not exported from the index.
 *
 * `what` names the field in error messages; it is only used to build one when the bytes are malformed, so
 * the happy path passes constant strings and allocates none.
 */
import type { BufferReader } from "./buffer-reader.js";
import type { BufferWriter } from "./buffer-writer.js";
import { ProtocolError } from "./protocol-error.js";

/** Frame bounds come from the caller, not from the wire: wrong ones are a bug, reported as a RangeError. */
export function checkFrameBounds(buf: Buffer, start: number, end: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= buf.length)) {
    throw new RangeError(`frame bounds [${start}, ${end}) are outside the buffer of ${buf.length} bytes`);
  }
}

/**
 * An Int16 element count. Read unsigned: PostgreSQL and libpq use the full 16 bits (a statement may have
 * up to 65535 parameters), so 0xFFFF means 65535, not -1. The count is checked against the bytes left, at
 * `minBytesEach` per element, before anything is allocated for it.
 */
export function readCount16(reader: BufferReader, minBytesEach: number, what: string): number {
  const n = reader.uint16(what);
  checkCount(reader, n, minBytesEach, what);
  return n;
}

/** An Int32 element count (NegotiateProtocolVersion): negative is malformed. */
export function readCount32(reader: BufferReader, minBytesEach: number, what: string): number {
  const n = reader.int32(what);
  if (n < 0) throw new ProtocolError(`${what} count is negative (${n})`);
  checkCount(reader, n, minBytesEach, what);
  return n;
}

function checkCount(reader: BufferReader, n: number, minBytesEach: number, what: string): void {
  if (n * minBytesEach > reader.remaining) {
    throw new ProtocolError(`${what} count of ${n} cannot fit in the ${reader.remaining} bytes left`);
  }
}

export function readInt16s(reader: BufferReader, what: string): number[] {
  const n = readCount16(reader, 2, what);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = reader.int16(what);
  return out;
}

/** Object IDs are unsigned 32-bit on the server, so they are read and written unsigned. */
export function readOids(reader: BufferReader, what: string): number[] {
  const n = readCount16(reader, 4, what);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = reader.uint32(what);
  return out;
}

/** Int32 length then that many bytes, as a view into the input; length -1 is NULL. */
export function readNullableBytes(reader: BufferReader, what: string): Buffer | null {
  const len = reader.int32(what);
  if (len === -1) return null;
  if (len < -1) throw new ProtocolError(`${what} length is ${len}`);
  return reader.bytes(len, what);
}

/** Int16 count then Int32-length-prefixed values (Bind parameters, FunctionCall arguments, DataRow). */
export function readNullableBytesArray(reader: BufferReader, what: string): (Buffer | null)[] {
  const n = readCount16(reader, 4, what);
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) out[i] = readNullableBytes(reader, what);
  return out;
}

export function writeCount16(writer: BufferWriter, n: number, what: string): void {
  if (n > 0xffff) throw new RangeError(`${what} count ${n} does not fit in Int16`);
  writer.uint16(n);
}

export function writeInt16s(writer: BufferWriter, values: readonly number[], what: string): void {
  writeCount16(writer, values.length, what);
  for (const v of values) writer.int16(v);
}

export function writeOids(writer: BufferWriter, values: readonly number[], what: string): void {
  writeCount16(writer, values.length, what);
  for (const v of values) writer.uint32(v);
}

export function writeNullableBytes(writer: BufferWriter, value: Uint8Array | null): void {
  if (value === null) {
    writer.int32(-1);
  } else {
    writer.int32(value.length);
    writer.bytes(value);
  }
}

export function writeNullableBytesArray(
  writer: BufferWriter,
  values: readonly (Uint8Array | null)[],
  what: string,
): void {
  writeCount16(writer, values.length, what);
  for (const v of values) writeNullableBytes(writer, v);
}

/** Bytes a list of nullable values takes on the wire, to size a writer once instead of growing it. */
export function nullableBytesSize(values: readonly (Uint8Array | null)[]): number {
  let n = 0;
  for (const v of values) n += 4 + (v === null ? 0 : v.length);
  return n;
}

/** A type byte as error messages show it: `'Q' (0x51)`, or just the hex when it is not printable. */
export function typeByteLabel(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, "0")}`;
  return type >= 0x21 && type <= 0x7e ? `'${String.fromCharCode(type)}' (${hex})` : hex;
}
