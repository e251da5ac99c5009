import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * PostgreSQL's MD5 password scheme.
 *
 * The stored secret (pg_authid.rolpassword, PgBouncer's userlist.txt) is "md5" + md5hex(password + user); the
 * client answers an AuthenticationMD5Password challenge with "md5" + md5hex(md5hex(password + user) + salt).
 * Because the response derives from the stored secret, not the password, whoever holds the secret can log in:
 * treat an "md5…" secret with the same care as the password. Strings are hashed as UTF-8, the encoding clients
 * send; pass bytes to hash anything else unchanged.
 */

/** Length of "md5" + 32 hex digits. */
const MD5_SECRET_LENGTH = 35;
const MD5_SECRET = /^md5[0-9a-f]{32}$/;
const SCRAM_PREFIX = "SCRAM-SHA-256$";

/** True for a stored MD5 secret, by PostgreSQL's own test: "md5" then exactly 32 lowercase hex digits. */
export function isMd5Secret(secret: string): boolean {
  return secret.length === MD5_SECRET_LENGTH && MD5_SECRET.test(secret);
}

function md5Hex(...parts: (string | Uint8Array)[]): string {
  const hash = createHash("md5");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

/** The stored form of a password: "md5" + md5hex(password + user). */
export function md5Secret(user: string | Uint8Array, password: string | Uint8Array): string {
  return `md5${md5Hex(password, user)}`;
}

function checkSalt(salt: Uint8Array): void {
  if (salt.length !== 4) throw new RangeError(`an MD5 salt is 4 bytes, got ${salt.length}`);
}

/** The 32 hex digits after "md5" of the stored secret, derived from a plaintext password if that is what we hold. */
function innerHash(secretOrPassword: string | Uint8Array, user: string | Uint8Array): string {
  if (typeof secretOrPassword === "string") {
    if (isMd5Secret(secretOrPassword)) return secretOrPassword.slice(3);
    // A verifier is not a password: hashing its text would let anyone who has read it answer the challenge.
    if (secretOrPassword.startsWith(SCRAM_PREFIX)) {
      throw new TypeError("a SCRAM-SHA-256 verifier cannot answer an MD5 challenge");
    }
  }
  return md5Hex(secretOrPassword, user);
}

/**
 * What a client puts in its PasswordMessage for an MD5 challenge: "md5" + md5hex(md5hex(password + user) + salt).
 * `secretOrPassword` is a plaintext password or an already hashed "md5…" secret (as PostgreSQL decides: a string
 * that looks exactly like a secret is taken as one).
 */
export function md5Response(
  secretOrPassword: string | Uint8Array,
  user: string | Uint8Array,
  salt: Uint8Array,
): string {
  checkSalt(salt);
  return `md5${md5Hex(innerHash(secretOrPassword, user), salt)}`;
}

/**
 * Server side of the MD5 exchange: does `response` (the PasswordMessage payload without its terminating NUL)
 * answer the challenge `salt` for `user` whose stored secret is `storedSecret` (plaintext or "md5…")? A stored
 * SCRAM verifier cannot check an MD5 response, so it never matches. The comparison takes the same time wherever
 * the first differing byte is.
 */
export function verifyMd5Response(
  storedSecret: string,
  user: string | Uint8Array,
  salt: Uint8Array,
  response: string | Uint8Array,
): boolean {
  checkSalt(salt);
  if (storedSecret.startsWith(SCRAM_PREFIX)) return false;
  const expected = Buffer.from(md5Response(storedSecret, user, salt), "latin1");
  const actual = typeof response === "string" ? Buffer.from(response, "utf8") : response;
  // Every valid response has the same public length, so refusing other lengths early reveals nothing.
  if (actual.length !== expected.length) return false;
  return timingSafeEqual(expected, actual);
}
