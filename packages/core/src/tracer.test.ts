import {
  encodeBind,
  encodeCommandComplete,
  encodeDataRow,
  encodeErrorResponse,
  encodeParse,
  encodePasswordMessage,
  encodeQuery,
  encodeReadyForQuery,
  encodeRowDescription,
  encodeSync,
  errorFields,
  TransactionStatus,
} from "@pgmux/protocol";
import { describe, expect, test } from "vitest";
import { TraceDirection, TraceLimitError, Tracer, type TraceTarget } from "./tracer.js";

interface FakeTarget extends TraceTarget {
  id: number;
  atMessageBoundary: boolean;
  server: { atMessageBoundary: boolean } | null;
}

function target(id: number, over: Partial<FakeTarget> = {}): FakeTarget {
  return {
    id,
    user: "alice",
    database: "shop",
    params: new Map([["application_name", `app${id}`]]),
    atMessageBoundary: true,
    server: { atMessageBoundary: true },
    trace: null,
    ...over,
  };
}

function fixedClock(start = 1_700_000_000_000) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

const F2B = TraceDirection.F2B;
const B2F = TraceDirection.B2F;

function texts(lines: { text: string }[]): string[] {
  return lines.map((l) => l.text);
}

function rowResult(): Buffer {
  return Buffer.concat([
    encodeRowDescription({
      fields: [
        { name: "one", tableOid: 0, columnNumber: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
        { name: "secret", tableOid: 0, columnNumber: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
      ],
    }),
    encodeDataRow({ values: [Buffer.from("1"), Buffer.from("hunter2")] }),
    encodeCommandComplete({ tag: "SELECT 1" }),
    encodeReadyForQuery({ status: TransactionStatus.Idle }),
  ]);
}

describe("Tracer", () => {
  test("with no trace open, no client gets a tap and nothing is recorded", () => {
    const clients = [target(1), target(2)];
    const tracer = new Tracer(clients);
    expect(tracer.tapFor(clients[0]!)).toBeNull();
    expect(clients.every((c) => c.trace === null)).toBe(true);
    expect(tracer.chunksRecorded).toBe(0);
  });

  test("a subscription taps exactly the clients it matches, and closing it takes the taps away", () => {
    const clients = [target(1), target(2), target(3, { user: "bob" })];
    const tracer = new Tracer(clients);
    const byApp = tracer.subscribe({ applicationName: "app2" });
    expect(clients.map((c) => c.trace !== null)).toEqual([false, true, false]);
    const byUser = tracer.subscribe({ user: "bob" });
    expect(clients.map((c) => c.trace !== null)).toEqual([false, true, true]);
    byApp.close();
    expect(clients.map((c) => c.trace !== null)).toEqual([false, false, true]);
    byUser.close();
    expect(clients.every((c) => c.trace === null)).toBe(true);
    expect(tracer.subscriptionCount).toBe(0);
  });

  test("a client logging in while a matching trace is open gets a tap; others do not", () => {
    const clients: FakeTarget[] = [];
    const tracer = new Tracer(clients);
    tracer.subscribe({ database: "shop", clientId: 7 });
    expect(tracer.tapFor(target(7))).not.toBeNull();
    expect(tracer.tapFor(target(8))).toBeNull();
    expect(tracer.tapFor(target(7, { database: "other" }))).toBeNull();
  });

  test("a query and its result become one decoded line per message, values masked", () => {
    const client = target(1);
    const clock = fixedClock();
    const tracer = new Tracer([client], { now: clock.now });
    const sub = tracer.subscribe({ clientId: 1 });
    const q = encodeQuery({ query: "SELECT 1 AS one,\n  'x' AS secret" });
    client.trace!.record(F2B, q, 0, q.length);
    const r = rowResult();
    client.trace!.record(B2F, r, 0, r.length);
    const lines = sub.drain();
    expect(texts(lines)).toEqual([
      "[F2B] Query {SELECT 1 AS one, 'x' AS secret}",
      "[B2F] RowDescription {fields: [one int4, secret text]}",
      "[B2F] DataRow {values: [<1 byte>, <7 bytes>]}",
      "[B2F] CommandComplete {SELECT 1}",
      "[B2F] ReadyForQuery {I}",
    ]);
    expect(lines.map((l) => l.direction)).toEqual(["F2B", "B2F", "B2F", "B2F", "B2F"]);
    expect(lines[0]).toMatchObject({ clientId: 1, message: "Query", time: clock.t });
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(tracer.chunksRecorded).toBe(2);
    expect(tracer.messagesSeen).toBe(5);
  });

  test("reveal shows values; password messages stay masked whatever is asked", () => {
    const client = target(1);
    const tracer = new Tracer([client]);
    const masked = tracer.subscribe({ clientId: 1 });
    const revealed = tracer.subscribe({ clientId: 1 }, { reveal: true });
    const bytes = Buffer.concat([
      encodeParse({ statement: "s1", query: "select $1::text", parameterTypes: [25] }),
      encodeBind({
        portal: "",
        statement: "s1",
        parameterFormats: [],
        parameters: [Buffer.from("top secret"), null],
        resultFormats: [],
      }),
      encodeSync(),
      encodePasswordMessage({ password: "md5abcdef" }),
      encodeQuery({ query: "ALTER ROLE bob PASSWORD 'it''s secret'" }),
    ]);
    client.trace!.record(F2B, bytes, 0, bytes.length);
    expect(texts(masked.drain())).toEqual([
      '[F2B] Parse {statement: "s1", query: select $1::text, parameterTypes: [text]}',
      '[F2B] Bind {portal: "", statement: "s1", parameters: [<10 bytes>, NULL]}',
      "[F2B] Sync",
      "[F2B] PasswordMessage {********}",
      "[F2B] Query {ALTER ROLE bob PASSWORD '********'}",
    ]);
    const shown = texts(revealed.drain());
    expect(shown[1]).toBe('[F2B] Bind {portal: "", statement: "s1", parameters: ["top secret", NULL]}');
    expect(shown[3]).toBe("[F2B] PasswordMessage {********}");
    expect(shown[4]).toBe("[F2B] Query {ALTER ROLE bob PASSWORD 'it''s secret'}");
  });

  test("messages split across chunks at every byte are decoded once, whole", () => {
    const client = target(1);
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({});
    const r = rowResult();
    for (let i = 0; i < r.length; i++) {
      client.server!.atMessageBoundary = false;
      client.trace!.record(B2F, r, i, i + 1);
    }
    expect(sub.drain()).toHaveLength(4);
    expect(tracer.chunksRecorded).toBe(r.length);
  });

  test("a tap attached in the middle of a client's message waits for the next boundary", () => {
    const client = target(1, { atMessageBoundary: false });
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 });
    const q = encodeQuery({ query: "SELECT 2" });
    // The tail of a message the tap never saw the start of: ignored, not misread.
    const tail = q.subarray(3);
    client.trace!.record(F2B, tail, 0, tail.length);
    expect(sub.drain()).toEqual([]);
    client.atMessageBoundary = true;
    client.trace!.record(F2B, q, 0, q.length);
    expect(texts(sub.drain())).toEqual(["[F2B] Query {SELECT 2}"]);
  });

  test("server bytes resume being decoded once the server's cursor reaches a boundary", () => {
    const server = { atMessageBoundary: false };
    const client = target(1, { server });
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 });
    const r = rowResult();
    client.trace!.record(B2F, r, 7, r.length); // mid-message: skipped
    expect(sub.drain()).toEqual([]);
    server.atMessageBoundary = true; // the server's cursor finished that chunk at a boundary
    client.trace!.record(B2F, r, 7, r.length);
    client.trace!.record(B2F, r, 0, r.length);
    expect(sub.drain()).toHaveLength(4);
  });

  test("a new server link restarts the server stream at a message boundary", () => {
    const client = target(1, { server: { atMessageBoundary: false } });
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 });
    client.server = { atMessageBoundary: false }; // linked to another server since
    const r = rowResult();
    client.trace!.record(B2F, r, 0, r.length);
    expect(sub.drain()).toHaveLength(4);
  });

  test("the rate limit drops lines beyond its budget and refills with time", () => {
    const client = target(1);
    const clock = fixedClock();
    const tracer = new Tracer([client], { now: clock.now });
    const sub = tracer.subscribe({ clientId: 1 }, { maxLinesPerSecond: 2 });
    const three = Buffer.concat([encodeSync(), encodeSync(), encodeSync()]);
    client.trace!.record(F2B, three, 0, three.length);
    expect(sub.drain()).toHaveLength(2);
    expect(sub.dropped).toBe(1);
    expect(tracer.linesDropped).toBe(1);
    clock.t += 1000;
    client.trace!.record(F2B, three, 0, three.length);
    expect(sub.drain()).toHaveLength(2);
    expect(sub.dropped).toBe(2);
  });

  test("the ring keeps the newest lines when its reader falls behind", () => {
    const client = target(1);
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 }, { capacity: 2 });
    for (const sql of ["SELECT 1", "SELECT 2", "SELECT 3"]) {
      const q = encodeQuery({ query: sql });
      client.trace!.record(F2B, q, 0, q.length);
    }
    expect(texts(sub.drain())).toEqual(["[F2B] Query {SELECT 2}", "[F2B] Query {SELECT 3}"]);
    expect(sub.dropped).toBe(1);
    expect(sub.pending).toBe(0);
  });

  test("a message longer than what is decoded is shown by size; a long query by its head", () => {
    const client = target(1);
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 });
    const big = encodeDataRow({ values: [Buffer.alloc(100_000, 0x61)] });
    // Split, so the tap copies only the decodable head of it.
    client.trace!.record(B2F, big, 0, 50_000);
    client.server!.atMessageBoundary = false;
    client.trace!.record(B2F, big, 50_000, big.length);
    const longQuery = encodeQuery({ query: `SELECT '${"x".repeat(20_000)}'` });
    client.trace!.record(F2B, longQuery, 0, longQuery.length);
    const [row, query] = texts(sub.drain());
    expect(row).toBe(`[B2F] DataRow {${big.length - 5} bytes, not decoded}`);
    expect(query).toMatch(/^\[F2B\] Query \{SELECT 'x+… \(20010 bytes\)\}$/);
  });

  test("errors show severity, SQLSTATE and message", () => {
    const client = target(1);
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 });
    const e = encodeErrorResponse({
      fields: errorFields({ severity: "ERROR", code: "42601", message: 'syntax error at or near "x"' }),
    });
    client.trace!.record(B2F, e, 0, e.length);
    expect(texts(sub.drain())).toEqual(['[B2F] ErrorResponse {ERROR 42601: syntax error at or near "x"}']);
  });

  test("subscribers are told when lines arrive, once per batch", async () => {
    const client = target(1);
    const tracer = new Tracer([client]);
    const sub = tracer.subscribe({ clientId: 1 });
    let calls = 0;
    const told = new Promise<void>((resolve) => {
      sub.onLines = () => {
        calls++;
        resolve();
      };
    });
    const two = Buffer.concat([encodeSync(), encodeSync()]);
    client.trace!.record(F2B, two, 0, two.length);
    await told;
    expect(calls).toBe(1);
    expect(sub.drain()).toHaveLength(2);
  });

  test("the number of open traces is bounded", () => {
    const tracer = new Tracer([], { maxSubscriptions: 1 });
    tracer.subscribe({});
    expect(() => tracer.subscribe({})).toThrow(TraceLimitError);
  });
});
