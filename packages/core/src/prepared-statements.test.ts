import { decodeFrontendMessage } from "@pgmux/protocol";
import { describe, expect, test } from "vitest";
import { PreparedStatement, ServerStatements, StatementCache } from "./prepared-statements.js";

/** A Parse body's definition part: query, NUL, parameter count and OIDs. */
function definition(query: string, types: number[] = []): Buffer {
  const b = Buffer.alloc(Buffer.byteLength(query) + 1 + 2 + 4 * types.length);
  let at = b.write(query);
  b[at++] = 0;
  at = b.writeUInt16BE(types.length, at);
  for (const t of types) at = b.writeUInt32BE(t, at);
  return b;
}

describe("PreparedStatement", () => {
  test("builds the Parse that creates it under its server name, with the client's text and types", () => {
    const s = new PreparedStatement("pgmux_s7", definition("select $1::int", [23]));
    const msg = decodeFrontendMessage(s.parse[0]!, s.parse, 5, s.parse.length, "password");
    expect(msg).toEqual({ type: "Parse", statement: "pgmux_s7", query: "select $1::int", parameterTypes: [23] });
    expect(s.query).toBe("select $1::int");
  });
});

describe("StatementCache", () => {
  test("one statement per distinct text and parameter types, shared by whoever prepares it", () => {
    const cache = new StatementCache(100);
    const d = definition("select 1");
    const a = cache.statementFor(d, 0, d.length);
    const b = cache.statementFor(Buffer.concat([Buffer.from("xx"), d]), 2, d.length + 2);
    expect(b).toBe(a);
    const typed = definition("select 1", [23]);
    expect(cache.statementFor(typed, 0, typed.length)).not.toBe(a);
    expect(cache.size).toBe(2);
  });

  test("past its limit it forgets the least recently prepared; a new statement gets a new name", () => {
    const cache = new StatementCache(2);
    const [d1, d2, d3] = ["select 1", "select 2", "select 3"].map((q) => definition(q));
    const s1 = cache.statementFor(d1!, 0, d1!.length);
    const s2 = cache.statementFor(d2!, 0, d2!.length);
    cache.statementFor(d1!, 0, d1!.length); // s1 used again: s2 is now the oldest
    cache.statementFor(d3!, 0, d3!.length);
    expect(cache.size).toBe(2);
    expect(cache.statementFor(d1!, 0, d1!.length)).toBe(s1);
    const s2again = cache.statementFor(d2!, 0, d2!.length);
    expect(s2again).not.toBe(s2);
    expect(s2again.serverName).not.toBe(s2.serverName);
  });
});

describe("ServerStatements", () => {
  const make = (n: number) =>
    Array.from({ length: n }, (_, i) => new PreparedStatement(`pgmux_s${i}`, definition(`select ${i}`)));

  test("overflow gives back the least recently used beyond the limit", () => {
    const held = new ServerStatements(2);
    const [a, b, c, d] = make(4);
    for (const s of [a!, b!, c!, d!]) held.add(s);
    expect(held.use(a!)).toBe(true);
    const evicted = held.takeOverflow();
    expect(evicted).toEqual([b, c]);
    expect([...held]).toEqual([d, a]);
    expect(held.takeOverflow()).toBeNull();
  });

  test("use of a statement it does not hold is a miss and changes nothing", () => {
    const held = new ServerStatements(5);
    const [a, b] = make(2);
    held.add(a!);
    expect(held.use(b!)).toBe(false);
    expect(held.size).toBe(1);
  });
});
