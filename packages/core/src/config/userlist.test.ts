import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import { parseUserlist, SecretKind, userlistSecretKind } from "./userlist.js";

const SCRAM =
  "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$h1W9gk7UOoBKPw6SHa5XvCwPZZ4ylS2Ih7YvSVNsXWY=:4m9aXyWZ7oMwvKPkAQNKPkRXeVq3bHp7jzYwWc5jp0E=";

function secrets(text: string): Record<string, string> {
  return Object.fromEntries([...parseUserlist(text, "/u.txt")].map(([user, e]) => [user, e.secret]));
}

function problemsOf(text: string): string[] {
  try {
    parseUserlist(text, "/u.txt");
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.text);
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("parseUserlist", () => {
  test("reads plain, md5 and SCRAM secrets", () => {
    const text = `"alice" "plain secret"\n"bob" "md5d41d8cd98f00b204e9800998ecf8427e"\n"carol" "${SCRAM}"\n`;
    expect(secrets(text)).toEqual({
      alice: "plain secret",
      bob: "md5d41d8cd98f00b204e9800998ecf8427e",
      carol: SCRAM,
    });
  });

  test('"" inside a field is one double quote', () => {
    expect(secrets('"o""brien" "say ""hi"""\n')).toEqual({ 'o"brien': 'say "hi"' });
  });

  test("skips ; and # comments and blank lines, and ignores fields after the second", () => {
    expect(secrets('; header\n\n# note\n  "a" "1" "extra" ignored\r\n')).toEqual({ a: "1" });
  });

  test("an empty secret is allowed (trust logins need only the name)", () => {
    expect(secrets('"postgres" ""\n')).toEqual({ postgres: "" });
  });

  test("a later line for the same user wins, as in PgBouncer", () => {
    expect(secrets('"a" "old"\n"a" "new"\n')).toEqual({ a: "new" });
  });

  test("remembers the line of each user", () => {
    expect(parseUserlist('\n"a" "1"\n', "/u.txt").get("a")?.line).toBe(2);
  });

  test("reports every malformed line with file and line, naming the user but never the secret", () => {
    const problems = problemsOf(
      `"ok" "fine"\nbare "Sekrit-One"\n"carol" "Sekrit-Two\n"dave" Sekrit-Three\n"" "Sekrit-Four"\n"eve" "SCRAM-SHA-256$x:Sekrit-Five"\n`,
    );
    expect(problems).toEqual([
      '/u.txt:2: auth_file: expected "user" "secret" (put both in double quotes, or start a comment with ;)',
      '/u.txt:3: userlist.carol: the secret has no closing " (end it with "; write "" for a quote inside)',
      '/u.txt:4: userlist.dave: expected the secret in double quotes after the user name (write "user" "secret")',
      '/u.txt:5: auth_file: the user name is empty (write "user" "secret")',
      "/u.txt:6: userlist.eve: the SCRAM-SHA-256 secret is malformed (copy the whole rolpassword value: SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>)",
    ]);
    expect(problems.join("\n")).not.toMatch(/Sekrit/);
  });

  test("throws nothing but ConfigError on arbitrary text", () => {
    const tokens = fc.constantFrom('"', '""', " ", "\t", "\n", ";", "#", "a", "md5", "SCRAM-SHA-256$", "$", ":", "=");
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.array(tokens, { maxLength: 60 }).map((t) => t.join("")),
    );
    fc.assert(
      fc.property(text, (t) => {
        try {
          parseUserlist(t, "/u.txt");
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("userlistSecretKind", () => {
  test("tells the three kinds apart the way PostgreSQL does", () => {
    expect(userlistSecretKind("md5d41d8cd98f00b204e9800998ecf8427e")).toBe(SecretKind.Md5);
    expect(userlistSecretKind(SCRAM)).toBe(SecretKind.ScramSha256);
    expect(userlistSecretKind("md5 is my password")).toBe(SecretKind.Plain);
    expect(userlistSecretKind("md5D41D8CD98F00B204E9800998ECF8427E")).toBe(SecretKind.Plain);
    expect(userlistSecretKind("")).toBe(SecretKind.Plain);
  });
});
