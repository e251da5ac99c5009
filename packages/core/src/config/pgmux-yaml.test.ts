import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import type { ReadTextFile } from "./ini-parser.js";
import { loadPgbouncerIni } from "./pgbouncer-ini.js";
import { loadPgmuxYaml } from "./pgmux-yaml.js";

const FIXTURES = join(import.meta.dirname, "fixtures");
const fixture = (name: string) => join(FIXTURES, name);

function memoryFiles(files: Record<string, string>): ReadTextFile {
  return (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return text;
  };
}

function loadYaml(text: string, extra: Record<string, string> = {}) {
  return loadPgmuxYaml("/etc/pgmux/pgmux.yaml", memoryFiles({ "/etc/pgmux/pgmux.yaml": text, ...extra }));
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.text.replaceAll(`${FIXTURES}/`, ""));
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadPgmuxYaml", () => {
  test("gives the same model as the equivalent pgbouncer.ini", () => {
    const fromIni = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    const fromYaml = loadPgmuxYaml(fixture("full/pgmux.yaml"));
    expect(fromYaml.config).toStrictEqual(fromIni.config);
    expect(fromYaml.warnings.map((w) => w.message)).toEqual(
      expect.arrayContaining(fromIni.warnings.map((w) => w.message)),
    );
  });

  test("keeps the line of every key, nested ones included", () => {
    const { sources } = loadPgmuxYaml(fixture("full/pgmux.yaml"));
    expect(sources.locate(["pgmux", "listen_port"])).toEqual({ file: fixture("full/pgmux.yaml"), line: 4 });
    expect(sources.locate(["databases", "billing", "password"])).toEqual({
      file: fixture("full/pgmux.yaml"),
      line: 43,
    });
  });

  test("unknown keys are errors naming the path, the line and the closest known key", () => {
    expect(problemsOf(() => loadPgmuxYaml(fixture("broken/unknown-key.yaml")))).toEqual([
      "broken/unknown-key.yaml:3: listen_prot: unknown setting (did you mean listen_port?)",
      "broken/unknown-key.yaml:5: databses: unknown setting (did you mean databases?)",
      "broken/unknown-key.yaml:11: databases.app.pool_sise: unknown setting (did you mean pool_size?)",
    ]);
  });

  test("a general setting at the top level is pointed to pgmux:", () => {
    expect(problemsOf(() => loadYaml("listen_port: 6432\npgmux: { auth_type: trust }\n"))).toEqual([
      "/etc/pgmux/pgmux.yaml:1: listen_port: unknown setting (general settings go under pgmux:)",
    ]);
  });

  test("an inline userlist replaces auth_file", () => {
    const { config } = loadYaml(
      'pgmux:\n  auth_type: md5\nuserlist:\n  alice: "md5d41d8cd98f00b204e9800998ecf8427e"\n',
    );
    expect(config.auth).toEqual({ alice: "md5d41d8cd98f00b204e9800998ecf8427e" });
    expect(config.pgmux.auth_file).toBeUndefined();
  });

  test("setting both auth_file and an inline userlist is an error", () => {
    expect(
      problemsOf(() =>
        loadYaml('pgmux:\n  auth_file: users.txt\nuserlist:\n  alice: "x"\n', { "/etc/pgmux/users.txt": "" }),
      ),
    ).toEqual([
      "/etc/pgmux/pgmux.yaml:3: userlist: is set together with auth_file (keep one: the inline userlist or the auth_file)",
    ]);
  });

  test("a userlist secret that YAML would read as a number must be quoted, and is not repeated", () => {
    const problems = problemsOf(() => loadYaml("pgmux: { auth_type: md5 }\nuserlist:\n  alice: 8675309\n"));
    expect(problems).toEqual([
      "/etc/pgmux/pgmux.yaml:3: userlist.alice: the secret must be text (put it in quotes, so YAML does not turn it into a number or a date)",
    ]);
    expect(problems.join()).not.toContain("8675309");
  });

  test("unix_socket_mode written as 0777 is octal, as in the ini", () => {
    const mode = (v: string) =>
      loadYaml(`pgmux:\n  auth_type: trust\n  unix_socket_mode: ${v}\n`).config.pgmux.unix_socket_mode;
    expect(mode("0777")).toBe(0o777);
    expect(mode('"0770"')).toBe(0o770);
    expect(mode("0o700")).toBe(0o700);
    expect(mode("448")).toBe(0o700);
  });

  test("a database may be a map, a connection string, or empty", () => {
    const { config } = loadYaml(
      "pgmux: { auth_type: trust }\ndatabases:\n  a: { host: x, port: 5433 }\n  b: \"host=y dbname='my db'\"\n  c:\n",
    );
    expect(config.databases).toEqual({
      a: { host: "x", port: 5433 },
      b: { host: "y", dbname: "my db", port: 5432 },
      c: { port: 5432 },
    });
  });

  test("a key with no value keeps its default", () => {
    const { config } = loadYaml("pgmux:\n  auth_type: trust\n  listen_port:\n  logfile:\n");
    expect(config.pgmux.listen_port).toBe(6432);
    expect("logfile" in config.pgmux).toBe(false);
  });

  test("YAML merge keys share settings between database entries", () => {
    const { config } = loadYaml(
      "pgmux: { auth_type: trust }\ndatabases:\n  a: &base { host: db, pool_size: 7 }\n  b: { <<: *base, dbname: other }\n",
    );
    expect(config.databases.b).toEqual({ host: "db", pool_size: 7, dbname: "other", port: 5432 });
  });

  test("numbers and switches may also be written as text, as an ini would", () => {
    const { config } = loadYaml(
      'pgmux:\n  auth_type: trust\n  listen_port: "7000"\n  so_reuseport: "1"\n  query_timeout: "2.5"\n',
    );
    expect(config.pgmux).toMatchObject({ listen_port: 7000, so_reuseport: true, query_timeout: 2.5 });
  });

  test("a section that is not a map is an error at its line", () => {
    expect(problemsOf(() => loadYaml("pgmux: { auth_type: trust }\ndatabases: [a, b]\n"))).toEqual([
      "/etc/pgmux/pgmux.yaml:2: databases: must be a map of settings (indent the settings under it)",
    ]);
  });

  test("a text password where YAML gives a number is an error that does not repeat it", () => {
    const problems = problemsOf(() => loadYaml("pgmux: { auth_type: trust }\ndatabases:\n  a: { password: 123456 }\n"));
    expect(problems).toEqual([
      "/etc/pgmux/pgmux.yaml:3: databases.a.password: must be text (in YAML, put it in quotes)",
    ]);
  });

  test("YAML syntax errors give the line but not the source excerpt, which may hold a password", () => {
    const problems = problemsOf(() =>
      loadYaml('pgmux: { auth_type: trust }\ndatabases:\n  a:\n    password: "Yaml-Syntax-Secret\n  b: [\n'),
    );
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^\/etc\/pgmux\/pgmux\.yaml:\d+: .+ \(fix the YAML syntax\)$/);
    expect(problems.join("\n")).not.toContain("Yaml-Syntax-Secret");
  });

  test("a key given twice is an error", () => {
    expect(problemsOf(() => loadYaml("pgmux:\n  auth_type: trust\n  auth_type: md5\n"))[0]).toMatch(
      /^\/etc\/pgmux\/pgmux\.yaml:3: Map keys must be unique/,
    );
  });

  test("a file that is not a map is rejected", () => {
    expect(problemsOf(() => loadYaml("- a\n- b\n"))[0]).toMatch(/must be a YAML map/);
  });
});
