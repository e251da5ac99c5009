import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { saslprep, scramPassword } from "./saslprep.js";

describe("saslprep follows RFC 4013 section 3 examples", () => {
  it.each([
    ["I\u00ADX", "IX", "SOFT HYPHEN mapped to nothing"],
    ["user", "user", "no transformation"],
    ["USER", "USER", "case preserved"],
    ["\u00AA", "a", "output is NFKC"],
    ["\u2168", "IX", "output is NFKC"],
  ])("prepares %j as %j (%s)", (input, expected) => {
    expect(saslprep(input)).toBe(expected);
  });

  it("refuses U+0007, a prohibited character", () => {
    expect(saslprep("\u0007")).toBeNull();
  });

  it("refuses U+0627 U+0031, which breaks the bidi rule", () => {
    expect(saslprep("\u0627\u0031")).toBeNull();
  });
});

describe("saslprep applies each RFC 3454 table", () => {
  it("maps B.1 characters to nothing", () => {
    expect(saslprep("a\u034Fb\uFE0Fc\u180Bd")).toBe("abcd");
  });

  it("maps C.1.2 non-ASCII spaces to U+0020", () => {
    expect(saslprep("a\u00A0b\u1680c\u3000d")).toBe("a b c d");
  });

  it.each([
    ["C.2.1 ASCII control", "a\u001Fb"],
    ["C.2.1 DELETE", "a\u007F"],
    ["C.2.2 non-ASCII control", "a\u0085"],
    ["C.2.2 musical control", "a\u{1D173}"],
    ["C.3 private use", "a\uE000"],
    ["C.3 private use, plane 16", "a\u{10FFFD}"],
    ["C.4 non-character", "a\uFDD0"],
    ["C.4 non-character, plane 1", "a\u{1FFFE}"],
    ["C.5 surrogate", "a\uD800"],
    ["C.6 inappropriate for plain text", "a\uFFFD"],
    ["C.7 ideographic description", "a\u2FF0"],
    ["C.8 display property", "a\u200E"],
    ["C.9 tagging", "a\u{E0001}"],
    ["A.1 unassigned in Unicode 3.2 (later LATIN SMALL LETTER D WITH CURL)", "a\u0221"],
    ["A.1 unassigned in Unicode 3.2 (later an emoji)", "a\u{1F600}"],
  ])("refuses %s", (_table, input) => {
    expect(saslprep(input)).toBeNull();
  });

  it("accepts right-to-left text that starts and ends with a D.1 character", () => {
    expect(saslprep("\u05D0\u05D1")).toBe("\u05D0\u05D1");
    expect(saslprep("\u0627\u0031\u0628")).toBe("\u0627\u0031\u0628");
  });

  it("refuses right-to-left text that does not end with a D.1 character", () => {
    expect(saslprep("\u05D0\u0031")).toBeNull();
  });

  it("refuses right-to-left text that contains a D.2 left-to-right character", () => {
    expect(saslprep("\u0627a\u0628")).toBeNull();
  });

  it("checks the normalized string, so a C.8 character that NFKC replaces is accepted", () => {
    // U+0340 COMBINING GRAVE TONE MARK normalizes to U+0300, which then composes with the "a".
    expect(saslprep("a\u0340")).toBe("\u00E0");
  });

  it("is idempotent on what it accepts", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (input) => {
        const once = saslprep(input);
        if (once !== null) expect(saslprep(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("scramPassword hashes what PostgreSQL hashes", () => {
  const bytes = (text: string): Buffer => Buffer.from(text, "utf8");

  it("prepares a valid non-ASCII password", () => {
    expect(scramPassword("I\u00ADX\u00AA")).toEqual(bytes("IXa"));
    expect(scramPassword("\u2168")).toEqual(bytes("IX"));
  });

  it("uses a pure ASCII password unchanged, even with control characters", () => {
    expect(scramPassword("pencil")).toEqual(bytes("pencil"));
    expect(scramPassword("a\u0007b")).toEqual(bytes("a\u0007b"));
    expect(scramPassword("")).toEqual(Buffer.alloc(0));
  });

  it("falls back to the raw bytes when preparation is prohibited", () => {
    expect(scramPassword("\u00E9\u0007")).toEqual(bytes("\u00E9\u0007"));
    expect(scramPassword("\u0627\u0031")).toEqual(bytes("\u0627\u0031"));
  });

  it("checks before normalizing, as PostgreSQL does, so U+0340 falls back to the raw bytes", () => {
    expect(scramPassword("a\u0340")).toEqual(bytes("a\u0340"));
  });

  it("falls back to the raw bytes when mapping leaves nothing", () => {
    expect(scramPassword("\u00AD")).toEqual(bytes("\u00AD"));
    expect(scramPassword(Uint8Array.of(0xef, 0xbb, 0xbf))).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
  });

  it("falls back to the raw bytes when they are not valid UTF-8", () => {
    const invalid = Uint8Array.of(0x70, 0xff, 0xc3, 0x28);
    expect(scramPassword(invalid)).toEqual(Buffer.from(invalid));
  });

  it("gives the same bytes for a string and its UTF-8 encoding", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (password) => {
        expect(scramPassword(Buffer.from(password, "utf8"))).toEqual(scramPassword(password));
      }),
      { numRuns: 2000 },
    );
  });

  it("returns bytes for any input without throwing", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (password) => {
        expect(Buffer.isBuffer(scramPassword(password))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
