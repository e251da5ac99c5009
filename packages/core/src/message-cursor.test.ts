import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { CursorEvent, MessageCursor } from "./message-cursor.js";

function typed(type: number, body: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(4 + body.length, 1);
  out.set(body, 5);
  return out;
}

const PEEK = new Uint8Array(256);
PEEK[0x5a] = 1; // 'Z'
PEEK[0x31] = 1; // '1' (empty body)

function walk(cursor: MessageCursor, chunks: Buffer[]): { headers: number[]; peeked: string[] } {
  const headers: number[] = [];
  const peeked: string[] = [];
  for (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length || cursor.pending) {
      pos = cursor.advance(chunk, pos);
      if (cursor.event === CursorEvent.Header) headers.push(cursor.type);
      else if (cursor.event === CursorEvent.Message)
        peeked.push(`${cursor.type}:${cursor.body.toString("hex", cursor.bodyStart, cursor.bodyEnd)}`);
    }
  }
  return { headers, peeked };
}

const messageArb = fc.record({
  type: fc.constantFrom(0x5a, 0x31, 0x44, 0x43, 0x45),
  body: fc.uint8Array({ maxLength: 200 }),
});

describe("MessageCursor", () => {
  test("reports every header and the body of each peeked type, whatever the chunking", () => {
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 15 }), fc.array(fc.nat(), { maxLength: 20 }), (msgs, rawCuts) => {
        const fixed = msgs.map((m) => (m.type === 0x31 ? { ...m, body: new Uint8Array() } : m));
        const stream = Buffer.concat(fixed.map((m) => typed(m.type, m.body)));
        const cuts = [...new Set(rawCuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of cuts) {
          chunks.push(stream.subarray(prev, c));
          prev = c;
        }
        chunks.push(stream.subarray(prev));
        const cursor = new MessageCursor(PEEK, 1 << 20);
        const { headers, peeked } = walk(cursor, chunks);
        expect(headers).toEqual(fixed.map((m) => m.type));
        expect(peeked).toEqual(
          fixed.filter((m) => PEEK[m.type] === 1).map((m) => `${m.type}:${Buffer.from(m.body).toString("hex")}`),
        );
        expect(cursor.atBoundary).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  test("is not at a message boundary while a header or body is incomplete", () => {
    const cursor = new MessageCursor(PEEK, 1 << 20);
    const msg = typed(0x44, Buffer.from("abc"));
    walk(cursor, [msg.subarray(0, 3)]);
    expect(cursor.atBoundary).toBe(false);
    walk(cursor, [msg.subarray(3, 6)]);
    expect(cursor.atBoundary).toBe(false);
    walk(cursor, [msg.subarray(6)]);
    expect(cursor.atBoundary).toBe(true);
  });

  test("rejects a length over the limit at the header", () => {
    const cursor = new MessageCursor(PEEK, 100);
    expect(() => walk(cursor, [Buffer.from([0x44, 0, 0, 0, 101])])).toThrow(/exceeds the limit/);
  });

  test("reports a peeked type longer than maxPeekBytes by its header only", () => {
    const cursor = new MessageCursor(PEEK, 1 << 20, 8);
    const { headers, peeked } = walk(cursor, [typed(0x5a, Buffer.alloc(20))]);
    expect(headers).toEqual([0x5a]);
    expect(peeked).toEqual([]);
  });
});
