import { resolve } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import { type IniDocument, parseIni, parseIniText, type ReadTextFile } from "./ini-parser.js";

/** Serves files from memory; a missing one fails the way fs does. */
function memoryFiles(files: Record<string, string>): ReadTextFile {
  return (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return text;
  };
}

function entries(doc: IniDocument): [string, string, string][] {
  return doc.entries.map((e) => [e.section.name, e.key, e.value]);
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.text);
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("parseIniText", () => {
  test("reads sections and key = value lines", () => {
    const doc = parseIniText("[pgbouncer]\nlisten_port = 6432\n[databases]\napp = host=db\n", "/etc/p.ini");
    expect(entries(doc)).toEqual([
      ["pgbouncer", "listen_port", "6432"],
      ["databases", "app", "host=db"],
    ]);
  });

  test("keeps the file and line of every key", () => {
    const doc = parseIniText("; comment\n\n[pgbouncer]\n  listen_port=1\n", "/etc/p.ini");
    expect(doc.entries[0]).toMatchObject({ file: "/etc/p.ini", line: 4, key: "listen_port" });
    expect(doc.sections[0]).toMatchObject({ name: "pgbouncer", line: 3 });
  });

  test("lines starting with ; or # are comments, also when indented", () => {
    const doc = parseIniText("[pgbouncer]\n; a = 1\n# b = 2\n   ; c = 3\nd = 4\n", "/p.ini");
    expect(entries(doc)).toEqual([["pgbouncer", "d", "4"]]);
  });

  test("; and # later in a line are part of the value, as in PgBouncer", () => {
    const doc = parseIniText("[pgbouncer]\nserver_reset_query = DISCARD ALL ; # not a comment\n", "/p.ini");
    expect(doc.entries[0]?.value).toBe("DISCARD ALL ; # not a comment");
  });

  test("trims the value but keeps quotes, which only connection strings interpret", () => {
    const doc = parseIniText("[databases]\napp =   host='a b'   \r\n", "/p.ini");
    expect(doc.entries[0]?.value).toBe("host='a b'");
  });

  test("an empty value is an empty string", () => {
    expect(parseIniText("[databases]\nfoodb =\n", "/p.ini").entries[0]?.value).toBe("");
  });

  test('keys may contain . - and *, and quoted names may contain anything with "" for a quote', () => {
    const doc = parseIniText('[databases]\n* = host=a\nmy-db.v2 = host=b\n"odd ""name"" here" = host=c\n', "/p.ini");
    expect(doc.entries.map((e) => e.key)).toEqual(["*", "my-db.v2", 'odd "name" here']);
  });

  test("a comment may follow a section header", () => {
    expect(parseIniText("[pgbouncer] ; main\nx = 1\n", "/p.ini").entries).toHaveLength(1);
  });

  test("a byte order mark at the start is ignored", () => {
    expect(parseIniText("\uFEFF[pgbouncer]\nx = 1\n", "/p.ini").sections[0]?.name).toBe("pgbouncer");
  });

  test("reports a key before any section with its line", () => {
    expect(problemsOf(() => parseIniText("listen_port = 1\n", "/p.ini"))).toEqual([
      "/p.ini:1: listen_port: comes before any [section] (put it under [pgbouncer], [databases] or [users])",
    ]);
  });

  test("reports every malformed line, not just the first", () => {
    const problems = problemsOf(() => parseIniText("[pgbouncer\n[x] y\nno equals here\n!bad\n", "/p.ini"));
    expect(problems).toHaveLength(4);
    expect(problems.map((p) => p.split(":")[1])).toEqual(["1", "2", "3", "4"]);
  });

  test("never repeats the text of a malformed line, which may hold a password", () => {
    const problems = problemsOf(() => parseIniText("[databases]\npassword hunter2 swordfish\n", "/p.ini"));
    expect(problems.join("\n")).not.toContain("hunter2");
    expect(problems.join("\n")).not.toContain("swordfish");
  });
});

describe("parseIni with %include", () => {
  test("reads an included file in place, relative to the including file's directory", () => {
    const read = memoryFiles({
      "/etc/pgb/main.ini": "[pgbouncer]\na = 1\n%include conf.d/more.ini\nc = 3\n",
      "/etc/pgb/conf.d/more.ini": "b = 2\n",
    });
    const doc = parseIni("/etc/pgb/main.ini", read);
    expect(entries(doc)).toEqual([
      ["pgbouncer", "a", "1"],
      ["pgbouncer", "b", "2"],
      ["pgbouncer", "c", "3"],
    ]);
    expect(doc.entries[1]).toMatchObject({ file: "/etc/pgb/conf.d/more.ini", line: 1 });
    expect(doc.files).toEqual(["/etc/pgb/main.ini", "/etc/pgb/conf.d/more.ini"]);
  });

  test("a section opened in an included file stays open after it, as in PgBouncer", () => {
    const read = memoryFiles({
      "/a.ini": "[pgbouncer]\n%include /b.ini\napp = host=x\n",
      "/b.ini": "[databases]\n",
    });
    expect(entries(parseIni("/a.ini", read))).toEqual([["databases", "app", "host=x"]]);
  });

  test("the same file may be included twice in a row", () => {
    const read = memoryFiles({ "/a.ini": "[pgbouncer]\n%include b.ini\n%include b.ini\n", "/b.ini": "x = 1\n" });
    expect(parseIni("/a.ini", read).entries).toHaveLength(2);
  });

  test("reports an include loop with the chain of files", () => {
    const read = memoryFiles({ "/a.ini": "[pgbouncer]\n%include b.ini\n", "/b.ini": "%include a.ini\n" });
    expect(problemsOf(() => parseIni("/a.ini", read))).toEqual([
      "/b.ini:1: %include: includes itself: /a.ini -> /b.ini -> /a.ini (remove one of these includes)",
    ]);
  });

  test("reports a file that includes itself", () => {
    const read = memoryFiles({ "/a.ini": "[pgbouncer]\n%include ./a.ini\n" });
    expect(problemsOf(() => parseIni("/a.ini", read))[0]).toMatch(/^\/a\.ini:2: %include: includes itself/);
  });

  test("stops includes nested more than ten deep", () => {
    const files: Record<string, string> = { "/f0.ini": "[pgbouncer]\n%include f1.ini\n" };
    for (let i = 1; i <= 12; i++) files[`/f${i}.ini`] = `%include f${i + 1}.ini\n`;
    expect(problemsOf(() => parseIni("/f0.ini", memoryFiles(files)))[0]).toMatch(/more than 10 files deep/);
  });

  test("reports a missing included file at the %include line", () => {
    const read = memoryFiles({ "/etc/a.ini": "[pgbouncer]\n\n%include missing.ini\n" });
    expect(problemsOf(() => parseIni("/etc/a.ini", read))).toEqual([
      "/etc/a.ini:3: %include: cannot read /etc/missing.ini: no such file (check the path; a relative one is taken from this file's directory)",
    ]);
  });

  test("reports %include without a file name", () => {
    const read = memoryFiles({ "/a.ini": "[pgbouncer]\n%include   \n" });
    expect(problemsOf(() => parseIni("/a.ini", read))[0]).toMatch(/^\/a\.ini:2: %include: needs a file name/);
  });

  test("reports an unreadable main file without a line", () => {
    expect(problemsOf(() => parseIni("/nope.ini", memoryFiles({})))).toEqual([
      "/nope.ini: cannot read the configuration file: no such file (check the path)",
    ]);
  });

  test("resolves a relative main path against the working directory", () => {
    const main = resolve("relative.ini");
    expect(parseIni("relative.ini", memoryFiles({ [main]: "[pgbouncer]\n" })).files).toEqual([main]);
  });
});

const iniTokens = fc.constantFrom(
  "[",
  "]",
  "=",
  " = ",
  ";",
  "#",
  "%include ",
  "%include",
  "\n",
  "\r\n",
  '"',
  "'",
  " ",
  "\t",
  "\\",
  "*",
  "a",
  "pgbouncer",
  "databases",
  "listen_port",
  "host=x",
  "self.ini",
  "other.ini",
  "\uFEFF",
  "\u0000",
);
const iniLikeText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.array(iniTokens, { maxLength: 60 }).map((parts) => parts.join("")),
);

describe("parseIni on arbitrary text", () => {
  test("throws nothing but ConfigError, includes and all", () => {
    fc.assert(
      fc.property(iniLikeText, iniLikeText, (main, other) => {
        const read = memoryFiles({ "/cfg/self.ini": main, "/cfg/other.ini": other });
        try {
          parseIni("/cfg/self.ini", read);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          for (const p of err.problems) expect(p.text).toMatch(/^\/cfg\/(self|other)\.ini(:\d+)?: /);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
