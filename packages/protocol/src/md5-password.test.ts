import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMd5Secret, md5Response, md5Secret, verifyMd5Response } from "./md5-password.js";

// Expected values computed independently (Python hashlib) from PostgreSQL's documented formula.
const POSTGRES_SECRET = "md53175bce1d3201d16594cebf9d7eb3f9d";
const SALT = Uint8Array.of(1, 2, 3, 4);
const POSTGRES_RESPONSE = "md568be9ed08db75f318087ab337aaea044";

describe("md5Secret", () => {
  it("hashes password then user as PostgreSQL stores it", () => {
    expect(md5Secret("postgres", "postgres")).toBe(POSTGRES_SECRET);
  });

  it("hashes strings as UTF-8, the same as the equivalent bytes", () => {
    expect(md5Secret("usér", "pässword")).toBe(md5Secret(Buffer.from("usér"), Buffer.from("pässword")));
  });
});

describe("isMd5Secret", () => {
  it("recognises md5 followed by 32 lowercase hex digits only", () => {
    expect(isMd5Secret(POSTGRES_SECRET)).toBe(true);
    expect(isMd5Secret(POSTGRES_SECRET.toUpperCase())).toBe(false);
    expect(isMd5Secret(`${POSTGRES_SECRET}0`)).toBe(false);
    expect(isMd5Secret(POSTGRES_SECRET.slice(0, -1))).toBe(false);
    expect(isMd5Secret("md5 not a hash at all, just text")).toBe(false);
  });
});

describe("md5Response", () => {
  it("answers the challenge from a plaintext password", () => {
    expect(md5Response("postgres", "postgres", SALT)).toBe(POSTGRES_RESPONSE);
  });

  it("answers the same from the stored secret as from the password", () => {
    expect(md5Response(POSTGRES_SECRET, "postgres", SALT)).toBe(POSTGRES_RESPONSE);
  });

  it("depends on the salt", () => {
    expect(md5Response("postgres", "postgres", Uint8Array.of(1, 2, 3, 5))).not.toBe(POSTGRES_RESPONSE);
  });

  it("refuses a salt that is not 4 bytes", () => {
    expect(() => md5Response("postgres", "postgres", Uint8Array.of(1, 2, 3))).toThrow(RangeError);
  });

  it("refuses to treat a SCRAM verifier as a password", () => {
    expect(() => md5Response("SCRAM-SHA-256$4096:c2FsdA==$a:b", "postgres", SALT)).toThrow(TypeError);
  });
});

describe("verifyMd5Response", () => {
  it("accepts the right response against a stored secret or a plaintext password", () => {
    expect(verifyMd5Response(POSTGRES_SECRET, "postgres", SALT, POSTGRES_RESPONSE)).toBe(true);
    expect(verifyMd5Response("postgres", "postgres", SALT, Buffer.from(POSTGRES_RESPONSE))).toBe(true);
  });

  it("rejects a wrong password, a response made for another user and a replay under another salt", () => {
    expect(verifyMd5Response(POSTGRES_SECRET, "postgres", SALT, md5Response("wrong", "postgres", SALT))).toBe(false);
    // The user name is baked into a stored secret; it only enters the check when the password is stored in clear.
    expect(verifyMd5Response("postgres", "alice", SALT, POSTGRES_RESPONSE)).toBe(false);
    expect(verifyMd5Response(POSTGRES_SECRET, "postgres", Uint8Array.of(9, 9, 9, 9), POSTGRES_RESPONSE)).toBe(false);
  });

  it("rejects responses of the wrong length, including the terminating NUL left in", () => {
    expect(verifyMd5Response(POSTGRES_SECRET, "postgres", SALT, "")).toBe(false);
    expect(verifyMd5Response(POSTGRES_SECRET, "postgres", SALT, `${POSTGRES_RESPONSE}\0`)).toBe(false);
  });

  it("never matches against a stored SCRAM verifier, even the verifier text hashed as a password", () => {
    const verifier = "SCRAM-SHA-256$4096:c2FsdA==$a:b";
    const forged = `md5${md5Secret("postgres", verifier).slice(3)}`;
    expect(verifyMd5Response(verifier, "postgres", SALT, md5Response(forged, "postgres", SALT))).toBe(false);
  });

  it("accepts exactly the response computed from the same password, for any password and salt", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.uint8Array({ minLength: 4, maxLength: 4 }), (password, other, salt) => {
        const response = md5Response(password, "user", salt);
        expect(verifyMd5Response(md5Secret("user", password), "user", salt, response)).toBe(true);
        expect(verifyMd5Response(other, "user", salt, response)).toBe(
          md5Secret("user", other) === md5Secret("user", password),
        );
      }),
      { numRuns: 1000 },
    );
  });
});
