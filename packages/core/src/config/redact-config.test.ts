import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import { loadConfig } from "./load-config.js";
import { REDACTED, redactConfig } from "./redact-config.js";

const FIXTURES = join(import.meta.dirname, "fixtures");

/** Every secret written in the fixtures, in the forms that end up in the model or might leak from a file. */
const SECRETS = [
  "c0rrect horse's battery",
  "c0rrect horse''s battery",
  "md5d41d8cd98f00b204e9800998ecf8427e",
  "md5c0ffee0123456789abcdef0123456789",
  "4m9aXyWZ7oMwvKPkAQNKPkRXeVq3bHp7jzYwWc5jp0E=",
  "h1W9gk7UOoBKPw6SHa5XvCwPZZ4ylS2Ih7YvSVNsXWY=",
  "plain-text etl secret",
  'sh"h-quiet',
  'sh""h-quiet',
  "Unkn0wn-Key-Secret",
  "Alice-Plain-Secret-1",
  "Bob-Unquoted-Secret-2",
  "Carol-Unclosed-Secret-3",
  "Dave-Broken-Scram-4",
  "Orders-Unclosed-Secret-5",
  "Stock-Spaced",
  "Secret-6",
  "Yaml-Unknown-Key-Secret-7",
];

function fixtureFiles(): string[] {
  return ["minimal", "full", "broken"].flatMap((dir) =>
    readdirSync(join(FIXTURES, dir)).map((name) => join(FIXTURES, dir, name)),
  );
}

/** Everything a person or a log could see from loading a fixture: messages, warnings, the redacted model. */
function visibleOutput(path: string): string {
  try {
    const { config, warnings, sources } = loadConfig(path);
    return [
      JSON.stringify(redactConfig(config)),
      ...warnings.map((w) => w.text),
      JSON.stringify(sources.files),
      JSON.stringify(sources),
    ].join("\n");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [err.message, String(err), JSON.stringify(err.problems)].join("\n");
  }
}

describe("secrets", () => {
  test("every listed secret really is in a fixture or its loaded model, so the check below means something", () => {
    const loaded = ["minimal/pgbouncer.ini", "full/pgbouncer.ini"].map((f) => loadConfig(join(FIXTURES, f)).config);
    const all = [...fixtureFiles().map((f) => readFileSync(f, "utf8")), ...loaded.map((c) => JSON.stringify(c))].join(
      "\n",
    );
    for (const secret of SECRETS) {
      const asJson = JSON.stringify(secret).slice(1, -1);
      expect(all.includes(secret) || all.includes(asJson), secret).toBe(true);
    }
  });

  test("no secret from the fixtures appears in any error message, warning or redacted output", () => {
    const files = fixtureFiles().filter((f) => !f.endsWith(".txt"));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const output = visibleOutput(file);
      for (const secret of SECRETS) {
        expect(output, `${file} shows a secret`).not.toContain(secret);
      }
    }
  });
});

describe("redactConfig", () => {
  test("replaces passwords and userlist secrets, keeps user names and everything else", () => {
    const { config } = loadConfig(join(FIXTURES, "full/pgbouncer.ini"));
    const redacted = redactConfig(config);
    expect(redacted.databases.billing).toEqual({ ...config.databases.billing, password: REDACTED });
    expect(redacted.auth).toEqual({
      app: REDACTED,
      reporting: REDACTED,
      etl: REDACTED,
      'o"brien': REDACTED,
      postgres: REDACTED,
    });
    expect(redacted.pgmux).toEqual(config.pgmux);
    expect(redacted.users).toEqual(config.users);
    expect(redacted.databases.app).toEqual(config.databases.app);
  });

  test("redacts LDAP options, which can carry a bind password", () => {
    const { config } = loadConfig(join(FIXTURES, "minimal/pgbouncer.ini"));
    const withLdap = { ...config, pgmux: { ...config.pgmux, auth_ldap_options: "ldapbindpasswd=Ldap-Secret" } };
    expect(JSON.stringify(redactConfig(withLdap))).not.toContain("Ldap-Secret");
  });

  test("leaves the configuration it was given untouched", () => {
    const { config } = loadConfig(join(FIXTURES, "full/pgbouncer.ini"));
    const before = structuredClone(config);
    redactConfig(config).pgmux.listen_addr.push("mutated");
    expect(config).toStrictEqual(before);
  });
});
