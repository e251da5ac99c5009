import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolVersion, RequestCode } from "./constants.js";
import { decodeFrontendMessage, decodeStartupFamily, type PasswordKind } from "./decode-frontend-message.js";
import {
  encodeBind,
  encodeCancelRequest,
  encodeFlush,
  encodeFrontendMessage,
  encodeQuery,
  encodeStartupMessage,
  encodeSync,
  type FrontendMessage,
  FrontendMessageType,
  PrebuiltFrontendMessage,
} from "./frontend-messages.js";
import { ProtocolError } from "./protocol-error.js";
import { frontendMessageArbitraries, frontendMessageArbitrary } from "./testing/message-arbitraries.js";

const RUNS = { numRuns: 1000 };

const STARTUP_FAMILY = new Set<FrontendMessage["type"]>([
  "StartupMessage",
  "SSLRequest",
  "GSSENCRequest",
  "CancelRequest",
]);
/** Kinds whose last field runs to the end of the body, so a shorter or longer body is still well formed. */
const OPEN_ENDED = new Set<FrontendMessage["type"]>(["CopyData", "GSSResponse", "SASLResponse", "CancelRequest"]);
const KINDS = Object.keys(frontendMessageArbitraries) as FrontendMessage["type"][];
const TYPED_TYPES = [...new Set(Object.values(FrontendMessageType))];
const PASSWORD_KINDS: PasswordKind[] = ["password", "sasl-initial", "sasl", "gss"];

function passwordKindOf(m: FrontendMessage): PasswordKind {
  switch (m.type) {
    case "SASLInitialResponse":
      return "sasl-initial";
    case "SASLResponse":
      return "sasl";
    case "GSSResponse":
      return "gss";
    default:
      return "password";
  }
}

/** Decodes `bytes[0, end)` as one whole encoded message of `m`'s kind, the way the frame reader splits it. */
function decodeAs(m: FrontendMessage, bytes: Buffer, end = bytes.length): FrontendMessage {
  if (STARTUP_FAMILY.has(m.type)) return decodeStartupFamily(bytes, 4, end);
  return decodeFrontendMessage(bytes[0]!, bytes, 5, end, passwordKindOf(m));
}

function headerBytes(m: FrontendMessage): number {
  return STARTUP_FAMILY.has(m.type) ? 4 : 5;
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

describe("frontend message round trip", () => {
  it.each(KINDS)("%s decodes back to the message it was encoded from", (kind) => {
    fc.assert(
      fc.property(frontendMessageArbitraries[kind], (m) => {
        const bytes = encodeFrontendMessage(m);
        expect(decodeAs(m, bytes)).toEqual(m);
      }),
      RUNS,
    );
  });

  it("the length field of every encoded message equals its byte count, for every kind", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(frontendMessageArbitrary, (m) => {
        seen.add(m.type);
        const bytes = encodeFrontendMessage(m);
        const length = STARTUP_FAMILY.has(m.type) ? bytes.readInt32BE(0) : bytes.readInt32BE(1);
        expect(length).toBe(bytes.length - headerBytes(m) + 4);
      }),
      RUNS,
    );
    expect([...seen].sort()).toEqual([...KINDS].sort());
  });

  it("decoded byte fields are views into the input, not copies", () => {
    const bytes = encodeBind({
      portal: "",
      statement: "s",
      parameterFormats: [],
      parameters: [hex("abcd")],
      resultFormats: [],
    });
    const m = decodeFrontendMessage(bytes[0]!, bytes, 5, bytes.length);
    if (m.type !== "Bind") throw new Error("not a Bind");
    expect(m.parameters[0]!.buffer).toBe(bytes.buffer);
  });
});

describe("malformed frontend bodies", () => {
  it("a body cut short anywhere is rejected with ProtocolError", () => {
    const closed = frontendMessageArbitrary.filter((m) => !OPEN_ENDED.has(m.type));
    const seen = new Set<string>();
    fc.assert(
      fc.property(closed, fc.nat(), (m, cut) => {
        const bytes = encodeFrontendMessage(m);
        const bodyLength = bytes.length - headerBytes(m);
        if (bodyLength === 0) return;
        seen.add(m.type);
        const end = bytes.length - 1 - (cut % bodyLength);
        expect(() => decodeAs(m, bytes, end)).toThrow(ProtocolError);
      }),
      RUNS,
    );
    expect(seen.size).toBeGreaterThan(10);
  });

  it("bytes after a complete body are rejected with ProtocolError", () => {
    const closed = frontendMessageArbitrary.filter((m) => !OPEN_ENDED.has(m.type));
    fc.assert(
      fc.property(closed, fc.uint8Array({ minLength: 1, maxLength: 16 }), (m, extra) => {
        const bytes = Buffer.concat([encodeFrontendMessage(m), extra]);
        expect(() => decodeAs(m, bytes)).toThrow(ProtocolError);
      }),
      RUNS,
    );
  });

  it("random bodies of any type byte decode to a message or raise ProtocolError, nothing else", () => {
    const type = fc.oneof(fc.constantFrom(...TYPED_TYPES), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(type, fc.uint8Array({ maxLength: 48 }), fc.constantFrom(...PASSWORD_KINDS), (t, body, kind) => {
        const buf = Buffer.from(body);
        decodesOrRejects(() => decodeFrontendMessage(t, buf, 0, buf.length, kind));
      }),
      RUNS,
    );
  });

  it("random untyped bodies decode to a startup-family message or raise ProtocolError, nothing else", () => {
    const code = fc.oneof(
      fc.constantFrom(
        RequestCode.CancelRequest,
        RequestCode.SSLRequest,
        RequestCode.GSSENCRequest,
        ProtocolVersion.V3_0,
      ),
      fc.integer({ min: -0x80000000, max: 0x7fffffff }),
    );
    fc.assert(
      fc.property(code, fc.uint8Array({ maxLength: 300 }), (c, rest) => {
        const buf = Buffer.concat([Buffer.alloc(4), rest]);
        buf.writeInt32BE(c, 0);
        decodesOrRejects(() => decodeStartupFamily(buf, 0, buf.length));
      }),
      RUNS,
    );
  });

  it("a valid message with corrupted bytes decodes or raises ProtocolError, nothing else", () => {
    fc.assert(
      fc.property(frontendMessageArbitrary, fc.nat(), fc.integer({ min: 0, max: 255 }), (m, at, value) => {
        const bytes = encodeFrontendMessage(m);
        const start = headerBytes(m);
        if (bytes.length === start) return;
        bytes[start + (at % (bytes.length - start))] = value;
        decodesOrRejects(() => decodeAs(m, bytes));
      }),
      RUNS,
    );
  });

  it("an unknown type byte is rejected with a ProtocolError naming it", () => {
    expect(() => decodeFrontendMessage(0x7a, Buffer.alloc(0), 0, 0)).toThrow(
      "unknown frontend message type 'z' (0x7a)",
    );
  });

  it("a parameter count the body cannot hold is rejected before anything is allocated", () => {
    // Bind "" "" 0 formats, 65535 parameters, and no parameter bytes.
    const body = hex("00 00 0000 ffff");
    expect(() => decodeFrontendMessage(0x42, body, 0, body.length)).toThrow(ProtocolError);
  });

  it("a parameter length below -1 is rejected", () => {
    const body = hex("00 00 0000 0001 fffffffe 0000");
    expect(() => decodeFrontendMessage(0x42, body, 0, body.length)).toThrow("Bind parameter length is -2");
  });

  it("a Close or Describe of something other than 'S' or 'P' is rejected", () => {
    const body = hex("58 00");
    expect(() => decodeFrontendMessage(0x43, body, 0, body.length)).toThrow(ProtocolError);
    expect(() => decodeFrontendMessage(0x44, body, 0, body.length)).toThrow(ProtocolError);
  });

  it("a cancel key shorter than 4 or longer than 256 bytes is rejected", () => {
    for (const keyLength of [0, 3, 257]) {
      const buf = Buffer.alloc(8 + keyLength);
      buf.writeInt32BE(RequestCode.CancelRequest, 0);
      expect(() => decodeStartupFamily(buf, 0, buf.length)).toThrow(ProtocolError);
    }
  });

  it("a startup frame with a protocol major version other than 3 is rejected", () => {
    const buf = hex("00040000 00");
    expect(() => decodeStartupFamily(buf, 0, buf.length)).toThrow("unsupported protocol version 4.0");
  });

  it("frame bounds outside the buffer are a caller bug, reported as RangeError", () => {
    expect(() => decodeFrontendMessage(0x53, Buffer.alloc(2), 0, 3)).toThrow(RangeError);
  });
});

describe("frontend messages against the byte layouts of the docs", () => {
  it("a Query is 'Q', a length counting itself, and the NUL-terminated query", () => {
    const bytes = encodeQuery({ query: "SELECT 1" });
    expect(bytes).toEqual(Buffer.concat([hex("51 0000000d"), Buffer.from("SELECT 1\0")]));
    expect(decodeFrontendMessage(0x51, bytes, 5, bytes.length)).toEqual({ type: "Query", query: "SELECT 1" });
  });

  it("a StartupMessage 3.0 with user and database has no type byte and ends with an empty name", () => {
    const m: FrontendMessage = {
      type: "StartupMessage",
      protocolVersion: ProtocolVersion.V3_0,
      parameters: [
        ["user", "alice"],
        ["database", "app"],
      ],
    };
    const expected = Buffer.concat([hex("00000021 00030000"), Buffer.from("user\0alice\0database\0app\0\0")]);
    expect(encodeStartupMessage(m)).toEqual(expected);
    expect(decodeStartupFamily(expected, 4, expected.length)).toEqual(m);
  });

  it("a StartupMessage asking for a newer 3.x minor version still decodes, for NegotiateProtocolVersion", () => {
    const bytes = hex("00030007 00");
    expect(decodeStartupFamily(bytes, 0, bytes.length)).toEqual({
      type: "StartupMessage",
      protocolVersion: 0x30007,
      parameters: [],
    });
  });

  it("a protocol 3.0 CancelRequest is 16 bytes: length, 80877102, process ID, 4-byte key", () => {
    const bytes = encodeCancelRequest({ processId: 4242, secretKey: hex("0a0b0c0d") });
    expect(bytes).toEqual(hex("00000010 04d2162e 00001092 0a0b0c0d"));
    expect(decodeStartupFamily(bytes, 4, bytes.length)).toEqual({
      type: "CancelRequest",
      processId: 4242,
      secretKey: hex("0a0b0c0d"),
    });
  });

  it("a protocol 3.2 CancelRequest carries a longer key in the rest of the message", () => {
    const key = Buffer.alloc(32, 7);
    const bytes = encodeCancelRequest({ processId: 1, secretKey: key });
    expect(bytes.readInt32BE(0)).toBe(12 + 32);
    expect(decodeStartupFamily(bytes, 4, bytes.length)).toEqual({
      type: "CancelRequest",
      processId: 1,
      secretKey: key,
    });
  });

  it("an SSLRequest and a GSSENCRequest are 8 bytes each", () => {
    const ssl = hex("00000008 04d2162f");
    const gss = hex("00000008 04d21630");
    expect(decodeStartupFamily(ssl, 4, 8)).toEqual({ type: "SSLRequest" });
    expect(decodeStartupFamily(gss, 4, 8)).toEqual({ type: "GSSENCRequest" });
    expect(encodeFrontendMessage({ type: "SSLRequest" })).toEqual(ssl);
    expect(encodeFrontendMessage({ type: "GSSENCRequest" })).toEqual(gss);
  });

  it("a Bind lays out portal, statement, formats, length-prefixed values with -1 for NULL, result formats", () => {
    const bytes = encodeBind({
      portal: "",
      statement: "s1",
      parameterFormats: [1],
      parameters: [hex("00000001"), null],
      resultFormats: [],
    });
    expect(bytes).toEqual(hex("42 0000001c 00 733100 0001 0001 0002 00000004 00000001 ffffffff 0000"));
  });

  it("'p' reads as the message the authentication exchange expects", () => {
    const initial = Buffer.concat([Buffer.from("SCRAM-SHA-256\0"), hex("ffffffff")]);
    expect(decodeFrontendMessage(0x70, initial, 0, initial.length, "sasl-initial")).toEqual({
      type: "SASLInitialResponse",
      mechanism: "SCRAM-SHA-256",
      data: null,
    });
    const password = Buffer.from("secret\0");
    expect(decodeFrontendMessage(0x70, password, 0, password.length)).toEqual({
      type: "PasswordMessage",
      password: "secret",
    });
  });

  it("the prebuilt Sync and Flush are the bytes their encoders produce", () => {
    expect(PrebuiltFrontendMessage.Sync).toEqual(hex("53 00000004"));
    expect(PrebuiltFrontendMessage.Flush).toEqual(hex("48 00000004"));
    expect(encodeSync()).toEqual(PrebuiltFrontendMessage.Sync);
    expect(encodeFlush()).not.toBe(PrebuiltFrontendMessage.Flush);
  });

  it("an empty StartupMessage parameter name cannot be encoded", () => {
    expect(() => encodeStartupMessage({ protocolVersion: ProtocolVersion.V3_0, parameters: [["", "x"]] })).toThrow(
      RangeError,
    );
  });
});
