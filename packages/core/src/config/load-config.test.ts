import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import type { ReadTextFile } from "./ini-parser.js";
import { ConfigFormat, detectConfigFormat, loadConfig } from "./load-config.js";

const FIXTURES = join(import.meta.dirname, "fixtures");

function memoryFiles(files: Record<string, string>): ReadTextFile {
  return (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return text;
  };
}

describe("detectConfigFormat", () => {
  test("goes by the extension when there is one", () => {
    expect(detectConfigFormat("/a/pgbouncer.ini", "pgmux: {}")).toBe(ConfigFormat.PgbouncerIni);
    expect(detectConfigFormat("/a/pgbouncer.conf", "")).toBe(ConfigFormat.PgbouncerIni);
    expect(detectConfigFormat("/a/pgmux.YAML", "[pgbouncer]")).toBe(ConfigFormat.PgmuxYaml);
    expect(detectConfigFormat("/a/pgmux.yml", "")).toBe(ConfigFormat.PgmuxYaml);
  });

  test("without an extension, a [section] or %include line means ini and anything else YAML", () => {
    expect(detectConfigFormat("/etc/config/pgbouncer", "; hi\n[databases]\n")).toBe(ConfigFormat.PgbouncerIni);
    expect(detectConfigFormat("/etc/config/pgbouncer", "%include /etc/base.ini\n")).toBe(ConfigFormat.PgbouncerIni);
    expect(detectConfigFormat("/etc/config/pgmux", "pgmux:\n  listen_addr: [a, b]\n")).toBe(ConfigFormat.PgmuxYaml);
  });
});

describe("loadConfig", () => {
  test("loads a pgbouncer.ini and a pgmux.yaml into the same model", () => {
    const ini = loadConfig(join(FIXTURES, "full/pgbouncer.ini"));
    const yaml = loadConfig(join(FIXTURES, "full/pgmux.yaml"));
    expect(yaml.config).toStrictEqual(ini.config);
  });

  test("loads an extensionless file by its content", () => {
    const read = memoryFiles({
      "/etc/config/pgbouncer": "[pgbouncer]\nauth_type = trust\n",
      "/etc/config/pgmux": "pgmux:\n  auth_type: trust\n  listen_port: 7000\n",
    });
    expect(loadConfig("/etc/config/pgbouncer", read).config.pgmux.listen_port).toBe(6432);
    expect(loadConfig("/etc/config/pgmux", read).config.pgmux.listen_port).toBe(7000);
  });

  test("an unreadable path is a ConfigError naming it", () => {
    expect(() => loadConfig("/does/not/exist.ini")).toThrow(ConfigError);
    expect(() => loadConfig("/does/not/exist.ini")).toThrow(
      "/does/not/exist.ini: cannot read the configuration file: no such file (check the path)",
    );
  });

  test("every problem line reads file:line: key: what is wrong (what to do)", () => {
    try {
      loadConfig(join(FIXTURES, "broken/bad-values.ini"));
      expect.unreachable();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) expect(p.text).toMatch(/^\/\S+\.ini:\d+: [a-z_.]+: .+ \(.+\)$/);
      expect(err.message.split("\n")[0]).toBe("pgmux cannot use this configuration (5 problems):");
    }
  });

  test("throws nothing but ConfigError for any file content, in either format", () => {
    const tokens = fc.constantFrom(
      "[pgbouncer]\n",
      "[databases]\n",
      "[users]\n",
      "[peers]\n",
      "pgmux:\n",
      "databases:\n",
      "  ",
      "auth_type = trust\n",
      "auth_type: trust\n",
      "auth_file = u.txt\n",
      "auth_file: u.txt\n",
      "%include other\n",
      "a = host=x port=",
      "'",
      '"',
      "=",
      ":",
      "- ",
      "{",
      "}",
      "[",
      "]",
      "*",
      "&a ",
      "*a ",
      "\n",
      "listen_port",
      "5",
      "-1",
      "0777",
    );
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.array(tokens, { maxLength: 40 }).map((t) => t.join("")),
    );
    const name = fc.constantFrom("/cfg/main.ini", "/cfg/main.yaml", "/cfg/main");
    fc.assert(
      fc.property(name, text, text, text, (main, content, other, userlist) => {
        const read = memoryFiles({ [main]: content, "/cfg/other": other, "/cfg/u.txt": userlist });
        try {
          loadConfig(main, read);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }),
      { numRuns: 1000 },
    );
  });
});
