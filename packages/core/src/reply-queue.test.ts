import { BackendMessageType as B } from "@pgmux/protocol";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { PreparedStatement } from "./prepared-statements.js";
import { completes, ReplyQueue, Slot } from "./reply-queue.js";

const statement = new PreparedStatement("pgmux_s1", Buffer.from("select 1\0\0\0", "latin1"));

function kinds(q: ReplyQueue): number[] {
  const out: number[] = [];
  for (let s = q.head; s < q.tail; s++) out.push(q.kindAt(s));
  return out;
}

describe("ReplyQueue", () => {
  test("keeps slots in order across growth, with their statements", () => {
    const q = new ReplyQueue();
    for (let i = 0; i < 100; i++) q.push(i % 2 === 0 ? Slot.Bind : Slot.Parse, i % 2 === 0 ? null : statement);
    expect(q.size).toBe(100);
    for (let i = 0; i < 100; i++) {
      expect(q.headKind).toBe(i % 2 === 0 ? Slot.Bind : Slot.Parse);
      expect(q.headRef).toBe(i % 2 === 0 ? null : statement);
      q.shift();
    }
    expect(q.size).toBe(0);
  });

  test("a slot resolved later keeps its place, found by its sequence number", () => {
    const q = new ReplyQueue();
    q.push(Slot.Sync);
    const pending = q.push(Slot.PendingEnsure, statement);
    q.push(Slot.Bind);
    q.unshift(Slot.SwallowClose, statement);
    q.set(pending, Slot.SwallowParse);
    expect(kinds(q)).toEqual([Slot.SwallowClose, Slot.Sync, Slot.SwallowParse, Slot.Bind]);
  });

  test("unshift in front of a full ring grows it without losing order", () => {
    const q = new ReplyQueue();
    for (let i = 0; i < 16; i++) q.push(Slot.Execute);
    q.unshift(Slot.SwallowClose);
    q.unshift(Slot.SwallowClose);
    expect(kinds(q)).toEqual([Slot.SwallowClose, Slot.SwallowClose, ...Array(16).fill(Slot.Execute)]);
  });

  test("dropAfterHead removes the Syncs behind the head only", () => {
    const q = new ReplyQueue();
    q.push(Slot.Execute);
    q.push(Slot.Sync);
    q.push(Slot.Parse, statement);
    q.push(Slot.Sync);
    expect(q.dropAfterHead(Slot.Sync)).toBe(2);
    expect(kinds(q)).toEqual([Slot.Execute, Slot.Parse]);
    q.shift();
    expect(q.headRef).toBe(statement);
  });

  test("clear forgets everything, including a skip to the next Sync", () => {
    const q = new ReplyQueue();
    q.push(Slot.Bind, statement);
    q.skipping = true;
    q.clear();
    expect(q.size).toBe(0);
    expect(q.skipping).toBe(false);
  });

  test("behaves as a double-ended list under any mix of operations", () => {
    type Op = { op: "push" | "unshift"; kind: Slot } | { op: "shift" };
    const kindArb = fc.constantFrom(...Object.values(Slot));
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("push" as const), kind: kindArb }),
      fc.record({ op: fc.constant("unshift" as const), kind: kindArb }),
      fc.record({ op: fc.constant("shift" as const) }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const q = new ReplyQueue();
        const model: number[] = [];
        for (const o of ops) {
          if (o.op === "push") {
            q.push(o.kind);
            model.push(o.kind);
          } else if (o.op === "unshift") {
            q.unshift(o.kind);
            model.unshift(o.kind);
          } else if (model.length > 0) {
            expect(q.headKind).toBe(model[0]);
            q.shift();
            model.shift();
          }
          expect(kinds(q)).toEqual(model);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("which reply completes which slot", () => {
  test("an ErrorResponse ends any extended-protocol slot but not a simple query", () => {
    for (const kind of [Slot.Parse, Slot.SwallowParse, Slot.Bind, Slot.Describe, Slot.Execute, Slot.Close]) {
      expect(completes(kind, B.ErrorResponse)).toBe(true);
    }
    expect(completes(Slot.Simple, B.ErrorResponse)).toBe(false);
    expect(completes(Slot.Sync, B.ErrorResponse)).toBe(false);
  });

  test("Describe of a statement ends at its row description or NoData, not at ParameterDescription", () => {
    expect(completes(Slot.Describe, B.ParameterDescription)).toBe(false);
    expect(completes(Slot.Describe, B.RowDescription)).toBe(true);
    expect(completes(Slot.Describe, B.NoData)).toBe(true);
  });

  test("Execute ends at CommandComplete, EmptyQueryResponse or PortalSuspended; rows do not end it", () => {
    expect(completes(Slot.Execute, B.DataRow)).toBe(false);
    expect(completes(Slot.Execute, B.CopyOutResponse)).toBe(false);
    for (const t of [B.CommandComplete, B.EmptyQueryResponse, B.PortalSuspended]) {
      expect(completes(Slot.Execute, t)).toBe(true);
    }
  });

  test("slots pgmux settles itself are never completed by a server reply", () => {
    for (let t = 0; t < 256; t++) {
      expect(completes(Slot.Skip, t)).toBe(false);
      expect(completes(Slot.EmitParseComplete, t)).toBe(false);
      expect(completes(Slot.PendingParse, t)).toBe(false);
    }
  });
});
