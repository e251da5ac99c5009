import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { KNOWN_KEYS } from "./config-schema.js";
import { parseConnectionString } from "./connection-string.js";

function values(text: string): Record<string, string> {
  const result = parseConnectionString(text);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(text)} to parse, got: ${result.message}`);
  return Object.fromEntries(result.values);
}

function failure(text: string, knownKeys?: readonly string[]): { key: string; message: string } {
  const result = parseConnectionString(text, knownKeys);
  if (result.ok) throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
  return result;
}

describe("parseConnectionString", () => {
  test("reads space-separated key=value pairs", () => {
    expect(values("host=db.internal port=5432 dbname=app")).toEqual({
      host: "db.internal",
      port: "5432",
      dbname: "app",
    });
  });

  test("an empty string has no settings, as PgBouncer's `foodb =` means all defaults", () => {
    expect(values("")).toEqual({});
    expect(values("   \t ")).toEqual({});
  });

  test("allows spaces and tabs around = and between pairs", () => {
    expect(values("  host = db   port\t=\t5433  ")).toEqual({ host: "db", port: "5433" });
  });

  test("a single-quoted value keeps its spaces", () => {
    expect(values("connect_query='SELECT 1; SELECT 2' host=x")).toEqual({
      connect_query: "SELECT 1; SELECT 2",
      host: "x",
    });
  });

  test("a doubled quote inside a quoted value is one quote, as PgBouncer writes it", () => {
    expect(values("password='it''s a secret'")).toEqual({ password: "it's a secret" });
  });

  test("a backslash-escaped quote inside a quoted value is one quote, as libpq writes it", () => {
    expect(values("password='it\\'s'")).toEqual({ password: "it's" });
  });

  test("a double backslash inside a quoted value is one backslash", () => {
    expect(values("password='a\\\\b'")).toEqual({ password: "a\\b" });
  });

  test("any other backslash inside quotes is kept as written", () => {
    expect(values("connect_query='SELECT E''\\n'''")).toEqual({ connect_query: "SELECT E'\\n'" });
  });

  test("backslashes in an unquoted value are kept as written, as PgBouncer does", () => {
    expect(values("password=ab\\cd\\\\ef")).toEqual({ password: "ab\\cd\\\\ef" });
  });

  test("a quote inside an unquoted value is an ordinary character", () => {
    expect(values("application_name=it's")).toEqual({ application_name: "it's" });
  });

  test("'' is an explicitly empty value", () => {
    expect(values("password='' host=x")).toEqual({ password: "", host: "x" });
  });

  test("= inside a value is part of the value", () => {
    expect(values("password=a=b=c")).toEqual({ password: "a=b=c" });
  });

  test("a later duplicate key wins", () => {
    expect(values("port=1 port=2")).toEqual({ port: "2" });
  });

  test("rejects a quoted value that is never closed, naming the key", () => {
    expect(failure("host=x password='open")).toMatchObject({ key: "password" });
  });

  test("rejects text glued to the closing quote", () => {
    expect(failure("password='a'b=c").message).toMatch(/closing '/);
  });

  test("rejects a key without a value at the end", () => {
    expect(failure("host=x dbname=").message).toMatch(/has no value/);
  });

  test("rejects a word without =", () => {
    const f = failure("host=x stray");
    expect(f.key).toBe("stray");
    expect(f.message).toMatch(/has no = after it/);
  });

  test("rejects a setting with no name", () => {
    expect(failure("=value").key).toBe("");
  });

  test("text after an unquoted password is reported as a quoting mistake without repeating it", () => {
    const stray = failure("host=x password=hunter two");
    expect(stray.key).toBe("password");
    expect(stray.message).not.toContain("two");
    const unknownKey = failure("password=hunter two=words", KNOWN_KEYS.databases);
    expect(unknownKey.key).toBe("password");
    expect(unknownKey.message).not.toContain("two");
    expect(unknownKey.message).toMatch(/quote a password/);
  });

  test("a known key after an unquoted password is an ordinary setting", () => {
    const result = parseConnectionString("password=hunter2 host=x", KNOWN_KEYS.databases);
    expect(result.ok).toBe(true);
  });

  test("quoting any value and parsing it back gives the value", () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const quoted = `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
        expect(values(`password=${quoted} host=x`)).toEqual({ password: value, host: "x" });
      }),
      { numRuns: 1000 },
    );
  });

  test("never throws, whatever the text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        parseConnectionString(text, KNOWN_KEYS.databases);
      }),
      { numRuns: 1000 },
    );
  });
});
