import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { FrameReader, UNTYPED } from "./frame-reader.js";
import { ProtocolError } from "./protocol-error.js";

interface Frame {
  type: number;
  body: string;
}

function typed(type: number, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function untyped(codeAndBody: Buffer): Buffer {
  const out = Buffer.alloc(4 + codeAndBody.length);
  out.writeUInt32BE(4 + codeAndBody.length, 0);
  codeAndBody.copy(out, 4);
  return out;
}

function collect(max = 1 << 20, startUntyped = false): { reader: FrameReader; frames: Frame[] } {
  const frames: Frame[] = [];
  const reader = new FrameReader(
    (type, buf, start, end) => {
      frames.push({ type, body: buf.toString("hex", start, end) });
    },
    { maxMessageBytes: max, untyped: startUntyped },
  );
  return { reader, frames };
}

function pushInChunks(reader: FrameReader, bytes: Buffer, cuts: number[]): void {
  let prev = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    reader.push(bytes.subarray(prev, cut));
    prev = cut;
  }
  reader.push(bytes.subarray(prev));
}

const frameArb = fc.record({
  type: fc.integer({ min: 0x21, max: 0x7e }),
  body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

/** Small frames, so that trying every single cut of a stream stays quick at 1,000 runs. */
const smallFrameArb = fc.record({
  type: fc.integer({ min: 0x21, max: 0x7e }),
  body: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
});

describe("FrameReader", () => {
  test("delivers a frame that lies inside one chunk as a view of that chunk, without copying", () => {
    const chunk = Buffer.concat([typed(0x5a, Buffer.from("I")), typed(0x43, Buffer.from("SELECT 1\0"))]);
    const seen: Array<{ buf: Buffer; start: number; end: number }> = [];
    const reader = new FrameReader((_t, buf, start, end) => seen.push({ buf, start, end }), { maxMessageBytes: 100 });
    reader.push(chunk);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.buf).toBe(chunk);
    expect(seen[1]!.buf).toBe(chunk);
    expect([seen[0]!.start, seen[0]!.end, seen[1]!.start, seen[1]!.end]).toEqual([5, 6, 11, 20]);
    expect(reader.buffered).toBe(0);
  });

  test("yields the same frames whatever the chunking of a stream (every single cut, and random cuts)", () => {
    fc.assert(
      fc.property(fc.array(smallFrameArb, { minLength: 1, maxLength: 8 }), (list) => {
        const stream = Buffer.concat(list.map((f) => typed(f.type, f.body)));
        const expected = list.map((f) => ({ type: f.type, body: f.body.toString("hex") }));
        for (let cut = 0; cut <= stream.length; cut++) {
          const { reader, frames } = collect();
          pushInChunks(reader, stream, [cut]);
          expect(frames).toEqual(expected);
          expect(reader.buffered).toBe(0);
        }
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (list, rawCuts) => {
          const stream = Buffer.concat(list.map((f) => typed(f.type, f.body)));
          const { reader, frames } = collect();
          pushInChunks(
            reader,
            stream,
            rawCuts.map((c) => c % (stream.length + 1)),
          );
          expect(frames).toEqual(list.map((f) => ({ type: f.type, body: f.body.toString("hex") })));
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("assembles a frame fed one byte at a time", () => {
    const stream = Buffer.concat([typed(0x44, Buffer.from("abcdef")), typed(0x53, Buffer.alloc(0))]);
    const { reader, frames } = collect();
    for (let i = 0; i < stream.length; i++) reader.push(stream.subarray(i, i + 1));
    expect(frames).toEqual([
      { type: 0x44, body: Buffer.from("abcdef").toString("hex") },
      { type: 0x53, body: "" },
    ]);
  });

  test("copies a split body, so a caller may reuse its chunk buffer after push returns", () => {
    const stream = typed(0x44, Buffer.from("0123456789"));
    const { reader, frames } = collect();
    const scratch = Buffer.alloc(stream.length);
    stream.copy(scratch, 0, 0, 8);
    reader.push(scratch.subarray(0, 8));
    scratch.fill(0xff);
    stream.copy(scratch, 0, 8);
    reader.push(scratch.subarray(0, stream.length - 8));
    expect(frames).toEqual([{ type: 0x44, body: Buffer.from("0123456789").toString("hex") }]);
  });

  test("rejects the largest declarable length (4 GiB - 1) as soon as the header is complete, holding no body", () => {
    const { reader, frames } = collect(1 << 20);
    const header = Buffer.from([0x44, 0xff, 0xff, 0xff, 0xff]);
    const before = process.memoryUsage().arrayBuffers;
    reader.push(header.subarray(0, 3));
    expect(() => reader.push(header.subarray(3))).toThrow(ProtocolError);
    expect(reader.buffered).toBe(0);
    expect(frames).toHaveLength(0);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    expect(() => reader.push(Buffer.alloc(10))).toThrow(ProtocolError);
  });

  test("rejects a length one byte over the limit and accepts one exactly at it", () => {
    const limit = 64;
    const atLimit = typed(0x44, Buffer.alloc(limit - 4));
    const overLimit = typed(0x44, Buffer.alloc(limit - 3));
    const ok = collect(limit);
    ok.reader.push(atLimit);
    expect(ok.frames).toHaveLength(1);
    const bad = collect(limit);
    expect(() => bad.reader.push(overLimit.subarray(0, 5))).toThrow(/exceeds the limit of 64 bytes/);
  });

  test("rejects a length field smaller than itself", () => {
    for (const len of [0, 1, 3]) {
      const { reader } = collect();
      const bytes = Buffer.from([0x51, 0, 0, 0, len]);
      expect(() => reader.push(bytes)).toThrow(ProtocolError);
    }
  });

  test("grows a split body's buffer with the bytes that arrived, not with the length the peer claimed", () => {
    const { reader } = collect(512 * 1024 * 1024);
    const header = Buffer.alloc(5);
    header[0] = 0x64;
    header.writeUInt32BE(500 * 1024 * 1024, 1);
    const before = process.memoryUsage().arrayBuffers;
    reader.push(Buffer.concat([header, Buffer.alloc(100)]));
    expect(reader.buffered).toBe(100);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
  });

  test("reads the untyped startup family, and typed messages once the consumer switches mode", () => {
    const ssl = untyped(Buffer.from([0x04, 0xd2, 0x16, 0x2f]));
    const startup = untyped(Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from("user\0bob\0\0")]));
    const query = typed(0x51, Buffer.from("select 1\0"));
    const frames: Frame[] = [];
    const reader = new FrameReader(
      (type, buf, start, end) => {
        frames.push({ type, body: buf.toString("hex", start, end) });
        if (type === UNTYPED && buf.readUInt32BE(start) === 196608) reader.untyped = false;
      },
      { maxMessageBytes: 1024, untyped: true },
    );
    const stream = Buffer.concat([ssl, startup, query]);
    for (let cut = 0; cut <= stream.length; cut++) {
      frames.length = 0;
      reader.untyped = true;
      pushInChunks(reader, stream, [cut]);
      expect(frames.map((f) => f.type)).toEqual([UNTYPED, UNTYPED, 0x51]);
    }
  });

  test("rejects an untyped frame shorter than 8 bytes or longer than the startup limit", () => {
    for (const len of [0, 4, 7, 10_001]) {
      const { reader } = collect(1 << 20, true);
      const bytes = Buffer.alloc(8);
      bytes.writeUInt32BE(len, 0);
      expect(() => reader.push(bytes)).toThrow(ProtocolError);
    }
  });

  test("after stop() keeps the bytes that followed the frame unread, so they are never taken as protocol", () => {
    const ssl = untyped(Buffer.from([0x04, 0xd2, 0x16, 0x2f]));
    const injected = typed(0x51, Buffer.from("drop table x\0"));
    const frames: number[] = [];
    const reader = new FrameReader(
      (type) => {
        frames.push(type);
        reader.stop();
      },
      { maxMessageBytes: 1024, untyped: true },
    );
    reader.push(Buffer.concat([ssl, injected]));
    expect(frames).toEqual([UNTYPED]);
    expect(reader.takeRest()?.equals(injected)).toBe(true);
    expect(() => reader.push(Buffer.alloc(1))).toThrow();
  });

  test("random bytes produce frames or a ProtocolError, never another error, and memory stays bounded", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 2048 }), { maxLength: 20 }),
        fc.boolean(),
        (chunks, startUntyped) => {
          const { reader } = collect(64 * 1024, startUntyped);
          let pushed = 0;
          try {
            for (const c of chunks) {
              reader.push(Buffer.from(c));
              pushed += c.length;
              expect(reader.buffered).toBeLessThanOrEqual(Math.min(pushed, 64 * 1024));
            }
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
