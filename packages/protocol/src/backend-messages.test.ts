import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AuthenticationCode,
  type BackendMessage,
  BackendMessageType,
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeBackendMessage,
  encodeErrorResponse,
  encodeReadyForQuery,
  PrebuiltBackendMessage,
  readyForQueryBytes,
} from "./backend-messages.js";
import { TransactionStatus } from "./constants.js";
import { decodeBackendMessage } from "./decode-backend-message.js";
import { errorCode, errorFields, errorMessage, errorSeverity } from "./error-fields.js";
import { ProtocolError } from "./protocol-error.js";
import { backendMessageArbitraries, backendMessageArbitrary } from "./testing/message-arbitraries.js";

const RUNS = { numRuns: 1000 };

/** Kinds whose last field runs to the end of the body, so a shorter or longer body is still well formed. */
const OPEN_ENDED = new Set<BackendMessage["type"]>([
  "CopyData",
  "AuthenticationGSSContinue",
  "AuthenticationSASLContinue",
  "AuthenticationSASLFinal",
  "BackendKeyData",
]);
const KINDS = Object.keys(backendMessageArbitraries) as BackendMessage["type"][];
const TYPES = Object.values(BackendMessageType);

function decodeWhole(bytes: Buffer, end = bytes.length): BackendMessage {
  return decodeBackendMessage(bytes[0]!, bytes, 5, end);
}

/** Runs a decoder on hostile bytes: a message or a ProtocolError are both fine, anything else fails. */
function decodesOrRejects(decode: () => unknown): void {
  try {
    decode();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("backend message round trip", () => {
  it.each(KINDS)("%s decodes back to the message it was encoded from", (kind) => {
    fc.assert(
      fc.property(backendMessageArbitraries[kind], (m) => {
        expect(decodeWhole(encodeBackendMessage(m))).toEqual(m);
      }),
      RUNS,
    );
  });

  it("the length field of every encoded message equals its byte count, for every kind", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(backendMessageArbitrary, (m) => {
        seen.add(m.type);
        const bytes = encodeBackendMessage(m);
        expect(bytes.readInt32BE(1)).toBe(bytes.length - 1);
      }),
      RUNS,
    );
    expect([...seen].sort()).toEqual([...KINDS].sort());
  });

  it("error fields keep their wire order", () => {
    fc.assert(
      fc.property(backendMessageArbitraries.ErrorResponse, (m) => {
        const decoded = decodeWhole(encodeBackendMessage(m));
        if (decoded.type !== "ErrorResponse") throw new Error("not an ErrorResponse");
        expect([...decoded.fields.keys()]).toEqual([...m.fields.keys()]);
      }),
      RUNS,
    );
  });
});

describe("malformed backend bodies", () => {
  it("a body cut short anywhere is rejected with ProtocolError", () => {
    const closed = backendMessageArbitrary.filter((m) => !OPEN_ENDED.has(m.type));
    const seen = new Set<string>();
    fc.assert(
      fc.property(closed, fc.nat(), (m, cut) => {
        const bytes = encodeBackendMessage(m);
        const bodyLength = bytes.length - 5;
        if (bodyLength === 0) return;
        seen.add(m.type);
        expect(() => decodeWhole(bytes, bytes.length - 1 - (cut % bodyLength))).toThrow(ProtocolError);
      }),
      RUNS,
    );
    expect(seen.size).toBeGreaterThan(15);
  });

  it("bytes after a complete body are rejected with ProtocolError", () => {
    const closed = backendMessageArbitrary.filter((m) => !OPEN_ENDED.has(m.type));
    fc.assert(
      fc.property(closed, fc.uint8Array({ minLength: 1, maxLength: 16 }), (m, extra) => {
        const bytes = Buffer.concat([encodeBackendMessage(m), extra]);
        expect(() => decodeWhole(bytes)).toThrow(ProtocolError);
      }),
      RUNS,
    );
  });

  it("random bodies of any type byte decode to a message or raise ProtocolError, nothing else", () => {
    const type = fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 255 }));
    const authenticationCode = fc.oneof(
      fc.constantFrom(...Object.values(AuthenticationCode)),
      fc.integer({ min: -1, max: 20 }),
    );
    fc.assert(
      fc.property(type, authenticationCode, fc.uint8Array({ maxLength: 48 }), (t, code, rest) => {
        // Give 'R' bodies a plausible code, so every Authentication decoder sees random bytes too.
        const buf =
          t === BackendMessageType.Authentication ? Buffer.concat([Buffer.alloc(4), rest]) : Buffer.from(rest);
        if (t === BackendMessageType.Authentication) buf.writeInt32BE(code, 0);
        decodesOrRejects(() => decodeBackendMessage(t, buf, 0, buf.length));
      }),
      RUNS,
    );
  });

  it("a valid message with corrupted bytes decodes or raises ProtocolError, nothing else", () => {
    fc.assert(
      fc.property(backendMessageArbitrary, fc.nat(), fc.integer({ min: 0, max: 255 }), (m, at, value) => {
        const bytes = encodeBackendMessage(m);
        if (bytes.length === 5) return;
        bytes[5 + (at % (bytes.length - 5))] = value;
        decodesOrRejects(() => decodeWhole(bytes));
      }),
      RUNS,
    );
  });

  it("an unknown type byte is rejected with a ProtocolError naming it", () => {
    expect(() => decodeBackendMessage(0x21, Buffer.alloc(0), 0, 0)).toThrow("unknown backend message type '!' (0x21)");
  });

  it("an unknown Authentication code is rejected", () => {
    const body = hex("00000006");
    expect(() => decodeBackendMessage(0x52, body, 0, 4)).toThrow("unknown Authentication code 6");
  });

  it("a DataRow column count the body cannot hold is rejected before anything is allocated", () => {
    const body = hex("ffff 00000000");
    expect(() => decodeBackendMessage(0x44, body, 0, body.length)).toThrow(ProtocolError);
  });

  it("a DataRow value length below -1 is rejected", () => {
    const body = hex("0001 80000000");
    expect(() => decodeBackendMessage(0x44, body, 0, body.length)).toThrow("DataRow column length is -2147483648");
  });

  it("a negative NegotiateProtocolVersion option count is rejected", () => {
    const body = hex("00030000 ffffffff");
    expect(() => decodeBackendMessage(0x76, body, 0, body.length)).toThrow(ProtocolError);
  });

  it("a ReadyForQuery status other than I, T or E is rejected", () => {
    const body = hex("58");
    expect(() => decodeBackendMessage(0x5a, body, 0, 1)).toThrow(ProtocolError);
  });

  it("a BackendKeyData key shorter than 4 or longer than 256 bytes is rejected", () => {
    for (const keyLength of [0, 3, 257]) {
      const body = Buffer.alloc(4 + keyLength);
      expect(() => decodeBackendMessage(0x4b, body, 0, body.length)).toThrow(ProtocolError);
    }
  });
});

describe("backend messages against the byte layouts of the docs", () => {
  it("ReadyForQuery idle is 'Z' 00 00 00 05 'I'", () => {
    const bytes = hex("5a 00000005 49");
    expect(encodeReadyForQuery({ status: TransactionStatus.Idle })).toEqual(bytes);
    expect(decodeWhole(bytes)).toEqual({ type: "ReadyForQuery", status: TransactionStatus.Idle });
  });

  it("the prebuilt constant messages are the bytes the docs give", () => {
    expect(PrebuiltBackendMessage.ReadyForQueryIdle).toEqual(hex("5a 00000005 49"));
    expect(PrebuiltBackendMessage.ReadyForQueryInTransaction).toEqual(hex("5a 00000005 54"));
    expect(PrebuiltBackendMessage.ReadyForQueryFailed).toEqual(hex("5a 00000005 45"));
    expect(PrebuiltBackendMessage.AuthenticationOk).toEqual(hex("52 00000008 00000000"));
    expect(PrebuiltBackendMessage.ParseComplete).toEqual(hex("31 00000004"));
    expect(PrebuiltBackendMessage.BindComplete).toEqual(hex("32 00000004"));
    expect(PrebuiltBackendMessage.CloseComplete).toEqual(hex("33 00000004"));
    expect(PrebuiltBackendMessage.NoData).toEqual(hex("6e 00000004"));
    expect(PrebuiltBackendMessage.EmptyQueryResponse).toEqual(hex("49 00000004"));
    expect(PrebuiltBackendMessage.PortalSuspended).toEqual(hex("73 00000004"));
    expect(PrebuiltBackendMessage.CopyDone).toEqual(hex("63 00000004"));
    expect(encodeAuthenticationOk()).toEqual(PrebuiltBackendMessage.AuthenticationOk);
  });

  it("readyForQueryBytes hands out the prebuilt message for each status", () => {
    expect(readyForQueryBytes(TransactionStatus.Idle)).toBe(PrebuiltBackendMessage.ReadyForQueryIdle);
    expect(readyForQueryBytes(TransactionStatus.InTransaction)).toBe(PrebuiltBackendMessage.ReadyForQueryInTransaction);
    expect(readyForQueryBytes(TransactionStatus.Failed)).toBe(PrebuiltBackendMessage.ReadyForQueryFailed);
  });

  it("a protocol 3.2 BackendKeyData carries a 32-byte key after the process ID", () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    const bytes = Buffer.concat([hex("4b 00000028 00003039"), key]);
    expect(encodeBackendKeyData({ processId: 12345, secretKey: key })).toEqual(bytes);
    expect(decodeWhole(bytes)).toEqual({ type: "BackendKeyData", processId: 12345, secretKey: key });
  });

  it("a protocol 3.0 BackendKeyData is 12 bytes after the type", () => {
    const bytes = hex("4b 0000000c 00000001 deadbeef");
    expect(decodeWhole(bytes)).toEqual({ type: "BackendKeyData", processId: 1, secretKey: hex("deadbeef") });
  });

  it("AuthenticationMD5Password is code 5 then the 4-byte salt", () => {
    const bytes = hex("52 0000000c 00000005 01020304");
    expect(encodeAuthenticationMD5Password({ salt: hex("01020304") })).toEqual(bytes);
    expect(decodeWhole(bytes)).toEqual({ type: "AuthenticationMD5Password", salt: hex("01020304") });
  });

  it("AuthenticationSASL lists mechanisms and ends with an empty one", () => {
    const bytes = Buffer.concat([hex("52 00000017 0000000a"), Buffer.from("SCRAM-SHA-256\0\0")]);
    expect(decodeWhole(bytes)).toEqual({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256"] });
    expect(encodeBackendMessage({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256"] })).toEqual(bytes);
  });

  it("an ErrorResponse with no SQLSTATE and field codes the docs do not list decodes", () => {
    const bytes = Buffer.concat([hex("45 00000015"), Buffer.from("SERROR\0Mboom\0"), hex("7a"), Buffer.from("x\0\0")]);
    const m = decodeWhole(bytes);
    if (m.type !== "ErrorResponse") throw new Error("not an ErrorResponse");
    expect(m.fields).toEqual(
      new Map([
        ["S", "ERROR"],
        ["M", "boom"],
        ["z", "x"],
      ]),
    );
    expect(errorCode(m.fields)).toBeUndefined();
    expect(errorSeverity(m.fields)).toBe("ERROR");
    expect(errorMessage(m.fields)).toBe("boom");
  });

  it("pgmux's own ErrorResponse carries S, V, C and M as PostgreSQL sends them", () => {
    const bytes = encodeErrorResponse({
      fields: errorFields({ severity: "FATAL", code: "08P01", message: "bad" }),
    });
    expect(bytes).toEqual(Buffer.concat([hex("45 0000001f"), Buffer.from("SFATAL\0VFATAL\0C08P01\0Mbad\0\0")]));
  });

  it("a RowDescription field has name, table OID, column, type OID, size, modifier and format", () => {
    const bytes = Buffer.concat([
      hex("54 0000001b 0001"),
      Buffer.from("id\0"),
      hex("00004000 0001 00000017 0004 ffffffff 0000"),
    ]);
    expect(decodeWhole(bytes)).toEqual({
      type: "RowDescription",
      fields: [
        { name: "id", tableOid: 0x4000, columnNumber: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
      ],
    });
  });

  it("a DataRow value of length -1 is NULL", () => {
    const bytes = hex("44 00000011 0002 00000003 616263 ffffffff");
    expect(decodeWhole(bytes)).toEqual({ type: "DataRow", values: [Buffer.from("abc"), null] });
  });

  it("a NegotiateProtocolVersion names the newest version and the unrecognized options", () => {
    const bytes = Buffer.concat([hex("76 00000015 00030000 00000001"), Buffer.from("_pq_.foo\0")]);
    expect(decodeWhole(bytes)).toEqual({
      type: "NegotiateProtocolVersion",
      newestProtocolVersion: 0x30000,
      unrecognizedOptions: ["_pq_.foo"],
    });
  });
});
