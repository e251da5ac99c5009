import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AuthenticationCode, encodeBackendMessage } from "./backend-messages.js";
import { ProtocolVersion, RequestCode } from "./constants.js";
import { encodeFrontendMessage } from "./frontend-messages.js";
import { authenticationName, messageName, startupMessageName } from "./message-names.js";
import { backendMessageArbitrary, frontendMessageArbitrary } from "./testing/message-arbitraries.js";

const RUNS = { numRuns: 1000 };
const UNTYPED = new Set(["StartupMessage", "SSLRequest", "GSSENCRequest", "CancelRequest"]);
const PASSWORD_FAMILY = new Set(["PasswordMessage", "SASLInitialResponse", "SASLResponse", "GSSResponse"]);

describe("messageName", () => {
  it("names every encoded backend message after its kind, and 'R' as Authentication", () => {
    fc.assert(
      fc.property(backendMessageArbitrary, (m) => {
        const bytes = encodeBackendMessage(m);
        if (m.type.startsWith("Authentication")) {
          expect(messageName("backend", bytes[0]!)).toBe("Authentication");
          expect(authenticationName(bytes.readInt32BE(5))).toBe(m.type);
        } else {
          expect(messageName("backend", bytes[0]!)).toBe(m.type);
        }
      }),
      RUNS,
    );
  });

  it("names every encoded frontend message after its kind, and 'p' after the four messages it may be", () => {
    fc.assert(
      fc.property(frontendMessageArbitrary, (m) => {
        const bytes = encodeFrontendMessage(m);
        if (UNTYPED.has(m.type)) {
          expect(startupMessageName(bytes.readInt32BE(4))).toBe(m.type);
        } else if (PASSWORD_FAMILY.has(m.type)) {
          expect(messageName("frontend", bytes[0]!).split("/")).toContain(m.type);
        } else {
          expect(messageName("frontend", bytes[0]!)).toBe(m.type);
        }
      }),
      RUNS,
    );
  });

  it("gives every byte of either direction a non-empty name", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("frontend" as const, "backend" as const),
        fc.integer({ min: 0, max: 255 }),
        (d, t) => {
          expect(messageName(d, t).length).toBeGreaterThan(0);
        },
      ),
      RUNS,
    );
  });

  it("tells the directions apart where a type byte means two messages", () => {
    expect(messageName("frontend", 0x43)).toBe("Close");
    expect(messageName("backend", 0x43)).toBe("CommandComplete");
    expect(messageName("frontend", 0x53)).toBe("Sync");
    expect(messageName("backend", 0x53)).toBe("ParameterStatus");
    expect(messageName("frontend", 0x45)).toBe("Execute");
    expect(messageName("backend", 0x45)).toBe("ErrorResponse");
  });

  it("shows an unknown type byte as its character and hex", () => {
    expect(messageName("backend", 0x21)).toBe("Unknown('!', 0x21)");
    expect(messageName("frontend", 0x00)).toBe("Unknown(0x00)");
  });

  it("returns the same precomputed string on every call", () => {
    const first = messageName("backend", 0x5a);
    for (let i = 0; i < 1000; i++) expect(messageName("backend", 0x5a)).toBe(first);
  });
});

describe("startupMessageName and authenticationName", () => {
  it("name untyped frames by their code, any 3.x version as StartupMessage", () => {
    expect(startupMessageName(ProtocolVersion.V3_0)).toBe("StartupMessage");
    expect(startupMessageName(ProtocolVersion.V3_2)).toBe("StartupMessage");
    expect(startupMessageName(RequestCode.CancelRequest)).toBe("CancelRequest");
    expect(startupMessageName(RequestCode.SSLRequest)).toBe("SSLRequest");
    expect(startupMessageName(RequestCode.GSSENCRequest)).toBe("GSSENCRequest");
    expect(startupMessageName(0x20000)).toBe("Unknown");
  });

  it("name every Authentication code the docs define", () => {
    expect(authenticationName(AuthenticationCode.SASL)).toBe("AuthenticationSASL");
    expect(authenticationName(AuthenticationCode.MD5Password)).toBe("AuthenticationMD5Password");
    expect(authenticationName(6)).toBe("AuthenticationUnknown");
  });
});
