import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { identifierName, keywordIs, SqlLexer, SqlToken, stringLiteralValue, tokenText } from "./sql-lexer.js";

const NAMES = Object.fromEntries(Object.entries(SqlToken).map(([name, kind]) => [kind, name]));

/** The meaningful tokens of `sql` as "Kind text" lines. */
function tokens(sql: string): string[] {
  const lx = new SqlLexer();
  const buf = Buffer.from(sql);
  lx.reset(buf, 0, buf.length);
  const out: string[] = [];
  for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) out.push(`${NAMES[kind]} ${tokenText(lx)}`);
  return out;
}

/** Every token of `sql`, whitespace and comments included. */
function scanned(sql: string): string[] {
  const lx = new SqlLexer();
  const buf = Buffer.from(sql);
  lx.reset(buf, 0, buf.length);
  const out: string[] = [];
  for (let kind = lx.scan(); kind !== SqlToken.End; kind = lx.scan()) out.push(`${NAMES[kind]} ${tokenText(lx)}`);
  return out;
}

/** A lexer positioned on the first meaningful token of `sql`. */
function first(sql: string): SqlLexer {
  const lx = new SqlLexer();
  const buf = Buffer.from(sql);
  lx.reset(buf, 0, buf.length);
  lx.next();
  return lx;
}

describe("SqlLexer", () => {
  test("splits words, numbers, operators and punctuation, skipping whitespace", () => {
    expect(tokens("SELECT a.b, 42 FROM t WHERE x >= $1;")).toEqual([
      "Word SELECT",
      "Word a",
      "Dot .",
      "Word b",
      "Comma ,",
      "Number 42",
      "Word FROM",
      "Word t",
      "Word WHERE",
      "Word x",
      "Operator >=",
      "Parameter $1",
      "Semicolon ;",
    ]);
    expect(tokens("f(x)[1]::int")).toEqual([
      "Word f",
      "OpenParen (",
      "Word x",
      "CloseParen )",
      "Other [",
      "Number 1",
      "Other ]",
      "Other :",
      "Other :",
      "Word int",
    ]);
  });

  test("returns whitespace and comments from scan() but not from next()", () => {
    expect(scanned("a -- note\n\t/* c */b")).toEqual([
      "Word a",
      "Space  ",
      "Comment -- note",
      "Space \n\t",
      "Comment /* c */",
      "Word b",
    ]);
    expect(tokens("a -- note\n\t/* c */b")).toEqual(["Word a", "Word b"]);
  });

  test("a line comment ends at a newline or carriage return", () => {
    expect(tokens("a --x;y\rb --z\nc")).toEqual(["Word a", "Word b", "Word c"]);
  });

  test("block comments nest as in PostgreSQL", () => {
    expect(tokens("a /* x /* y */ still comment */ b")).toEqual(["Word a", "Word b"]);
    expect(scanned("/*/**/*/c")).toEqual(["Comment /*/**/*/", "Word c"]);
  });

  test("an unterminated block comment runs to the end", () => {
    expect(scanned("a /* b /* c */ d")).toEqual(["Word a", "Space  ", "Comment /* b /* c */ d"]);
  });

  test("a standard string doubles its quotes and keeps backslashes literal", () => {
    expect(tokens("'it''s' 'a\\' x")).toEqual(["String 'it''s'", "String 'a\\'", "Word x"]);
  });

  test("an escape string, E'' or e'', lets a backslash escape the quote", () => {
    expect(tokens("E'a\\'b' e'c''d\\\\' x")).toEqual(["String E'a\\'b'", "String e'c''d\\\\'", "Word x"]);
  });

  test("U&'' strings, U&\"\" identifiers and N'', B'', X'' strings are single tokens", () => {
    expect(tokens(`U&'d\\0061t' u&"i""d" N'n' b'01' X'1F' n`)).toEqual([
      "String U&'d\\0061t'",
      'QuotedIdentifier u&"i""d"',
      "String N'n'",
      "String b'01'",
      "String X'1F'",
      "Word n",
    ]);
  });

  test("a word merely starting with E, N, B, X or U is still a word", () => {
    expect(tokens("end nb xu u& e")).toEqual(["Word end", "Word nb", "Word xu", "Word u", "Operator &", "Word e"]);
  });

  test("quoted identifiers double their quotes and hide keywords", () => {
    expect(tokens(`"a""b" "LISTEN"`)).toEqual([`QuotedIdentifier "a""b"`, `QuotedIdentifier "LISTEN"`]);
  });

  test("dollar quotes match their own tag only", () => {
    expect(tokens("$$a'b$$ $x$ $$ $y$ $x$ z")).toEqual([
      "DollarString $$a'b$$",
      "DollarString $x$ $$ $y$ $x$",
      "Word z",
    ]);
    expect(tokens("$_é1$;$_é1$")).toEqual(["DollarString $_é1$;$_é1$"]);
  });

  test("$1 is a parameter, and a tag cannot start with a digit", () => {
    expect(tokens("$1 $12$")).toEqual(["Parameter $1", "Parameter $12$"]);
    expect(tokens("$ 1")).toEqual(["Other $", "Number 1"]);
  });

  test("a dollar sign inside a word belongs to the word", () => {
    expect(tokens("a$$b$$ c")).toEqual(["Word a$$b$$", "Word c"]);
  });

  test("a lone $tag without its closing dollar is not a dollar quote", () => {
    expect(tokens("$abc + 1")).toEqual(["Other $", "Word abc", "Operator +", "Number 1"]);
  });

  test("unterminated strings, identifiers and dollar quotes run to the end", () => {
    expect(tokens("x 'abc")).toEqual(["Word x", "String 'abc"]);
    expect(tokens("x E'ab\\")).toEqual(["Word x", "String E'ab\\"]);
    expect(tokens('x "ab')).toEqual(["Word x", 'QuotedIdentifier "ab']);
    expect(tokens("x $q$ab$q")).toEqual(["Word x", "DollarString $q$ab$q"]);
  });

  test("numbers: integers, decimals, exponents, and glued letters in one token", () => {
    expect(tokens("1 1.5 .5 1e10 2.5E-3 1. 0x1F 1_000 7abc")).toEqual([
      "Number 1",
      "Number 1.5",
      "Number .5",
      "Number 1e10",
      "Number 2.5E-3",
      "Number 1.",
      "Number 0x1F",
      "Number 1_000",
      "Number 7abc",
    ]);
    expect(tokens("1..2")).toEqual(["Number 1", "Dot .", "Number .2"]);
  });

  test("an operator of SQL-standard characters drops a trailing + or -, as PostgreSQL does", () => {
    expect(tokens("x=-1")).toEqual(["Word x", "Operator =", "Operator -", "Number 1"]);
    expect(tokens("a @- b")).toEqual(["Word a", "Operator @-", "Word b"]);
  });

  test("an operator stops where a comment starts", () => {
    expect(tokens("a +--c\nb")).toEqual(["Word a", "Operator +", "Word b"]);
    expect(tokens("a */* c */ b")).toEqual(["Word a", "Operator *", "Word b"]);
  });

  test("lexes only its range: bytes around it are never read", () => {
    const buf = Buffer.from("'xx SELECT 'a' yy'");
    const lx = new SqlLexer();
    lx.reset(buf, 4, 14);
    const seen: string[] = [];
    for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) seen.push(tokenText(lx));
    expect(seen).toEqual(["SELECT", "'a'"]);
  });

  test("pos can be saved and assigned back to rewind", () => {
    const lx = first("a b c");
    const saved = lx.pos;
    lx.next();
    lx.next();
    lx.pos = saved;
    lx.next();
    expect(tokenText(lx)).toBe("b");
  });

  test("keywordIs compares bare words case-insensitively and whole", () => {
    expect(keywordIs(first("LiStEn x"), "listen")).toBe(true);
    expect(keywordIs(first("listens"), "listen")).toBe(false);
    expect(keywordIs(first("liste"), "listen")).toBe(false);
    expect(keywordIs(first('"listen"'), "listen")).toBe(false);
    expect(keywordIs(first("'listen'"), "listen")).toBe(false);
    expect(keywordIs(first("set_config"), "set_config")).toBe(true);
    expect(keywordIs(first("SET\x7fCONFIG"), "set_config")).toBe(false);
  });

  test("identifierName folds bare words (ASCII only) and unquotes quoted ones", () => {
    expect(identifierName(first("MyApp"))).toBe("myapp");
    expect(identifierName(first("ÉtÉ"))).toBe("ÉtÉ");
    expect(identifierName(first('"My""App"'))).toBe('My"App');
    expect(identifierName(first('U&"plain"'))).toBe("plain");
    expect(identifierName(first('U&"\\0061"'))).toBe('U&"\\0061"');
    expect(identifierName(first('"open'))).toBe("open");
  });

  test("stringLiteralValue decodes the string forms it can and declines the rest", () => {
    expect(stringLiteralValue(first("'it''s'"))).toBe("it's");
    expect(stringLiteralValue(first("'a\\b'"))).toBe("a\\b");
    expect(stringLiteralValue(first("E'a\\'b\\nc\\\\'"))).toBe("a'b\nc\\");
    expect(stringLiteralValue(first("N'n'"))).toBe("n");
    expect(stringLiteralValue(first("U&'plain'"))).toBe("plain");
    expect(stringLiteralValue(first("$$x'y$$"))).toBe("x'y");
    expect(stringLiteralValue(first("$t$$$t$"))).toBe("$");
    expect(stringLiteralValue(first("$t$$t$"))).toBe("");
    expect(stringLiteralValue(first("'é'"))).toBe("é");
    for (const declined of ["E'\\101'", "E'\\x41'", "U&'\\0041'", "B'01'", "'open", "$t$open", "$$", "x", "E'a\\"]) {
      expect(stringLiteralValue(first(declined)), declined).toBeNull();
    }
  });
});

/** Bytes rich in the characters that open, close and escape the lexer's constructs. */
const sqlish = fc
  .array(
    fc.constantFrom(
      "'",
      '"',
      "''",
      "$",
      "$$",
      "$a$",
      "$1",
      "--",
      "/*",
      "*/",
      "\n",
      "\r",
      " ",
      "E'",
      "U&'",
      'U&"',
      "\\",
      "a",
      "é",
      "1",
      ".",
      "e",
      "-",
      "+",
      "=",
      ";",
      "(",
      ")",
      "\0",
    ),
    { maxLength: 60 },
  )
  .map((parts) => Buffer.from(parts.join("")));
const anyBytes = fc.oneof(
  sqlish,
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
);

describe("SqlLexer properties", () => {
  test("scan() tokens tile the range exactly, each non-empty, and end", () => {
    fc.assert(
      fc.property(anyBytes, fc.nat(), fc.nat(), (buf, a, b) => {
        const start = a % (buf.length + 1);
        const end = start + (b % (buf.length - start + 1));
        const lx = new SqlLexer();
        lx.reset(buf, start, end);
        let at = start;
        for (let kind = lx.scan(); kind !== SqlToken.End; kind = lx.scan()) {
          expect(lx.tokenStart).toBe(at);
          expect(lx.tokenEnd).toBeGreaterThan(lx.tokenStart);
          expect(lx.tokenEnd).toBeLessThanOrEqual(end);
          at = lx.tokenEnd;
        }
        expect(at).toBe(end);
        expect(lx.scan()).toBe(SqlToken.End);
      }),
      { numRuns: 2000 },
    );
  });

  test("next() tokens are non-empty, in order, never overlap and stay in range", () => {
    fc.assert(
      fc.property(anyBytes, (buf) => {
        const lx = new SqlLexer();
        lx.reset(buf, 0, buf.length);
        let at = 0;
        let count = 0;
        for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) {
          expect(lx.tokenStart).toBeGreaterThanOrEqual(at);
          expect(lx.tokenEnd).toBeGreaterThan(lx.tokenStart);
          expect(lx.tokenEnd).toBeLessThanOrEqual(buf.length);
          expect(lx.kind).toBe(kind);
          at = lx.tokenEnd;
          expect(++count).toBeLessThanOrEqual(buf.length);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test("a range lexes as the same bytes copied out alone", () => {
    fc.assert(
      fc.property(sqlish, sqlish, sqlish, (before, body, after) => {
        const whole = Buffer.concat([before, body, after]);
        const alone = new SqlLexer();
        alone.reset(body, 0, body.length);
        const inside = new SqlLexer();
        inside.reset(whole, before.length, before.length + body.length);
        for (let kind = alone.scan(); ; kind = alone.scan()) {
          expect(inside.scan()).toBe(kind);
          expect(inside.tokenStart - before.length).toBe(alone.tokenStart);
          expect(inside.tokenEnd - before.length).toBe(alone.tokenEnd);
          if (kind === SqlToken.End) break;
        }
      }),
      { numRuns: 1000 },
    );
  });

  test("the helpers never throw on any token", () => {
    fc.assert(
      fc.property(anyBytes, (buf) => {
        const lx = new SqlLexer();
        lx.reset(buf, 0, buf.length);
        for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) {
          identifierName(lx);
          stringLiteralValue(lx);
          keywordIs(lx, "listen");
        }
      }),
      { numRuns: 1000 },
    );
  });
});
