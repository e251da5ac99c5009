/**
 * A byte-level lexer for PostgreSQL SQL text, as it lies inside a Query or Parse message: a range of a
 * Buffer, read in place. Pure: no I/O, and no allocation per token, since it runs over every query a
 * client sends; strings are made only by the helpers below, which callers use once they know a token
 * matters. Token boundaries follow PostgreSQL's own scanner (scan.l) closely enough to tell keywords
 * from the same letters inside strings, quoted identifiers, dollar quotes and (nested) comments; it does
 * not validate. Malformed or unterminated input never throws: an open construct ends at the range's end.
 *
 * Assumes standard_conforming_strings = on (the default since PostgreSQL 9.1): a backslash is an
 * ordinary character in '...' and only escapes inside E'...'.
 */

export const SqlToken = {
  End: 0,
  /** Whitespace; returned by `scan()` only. */
  Space: 1,
  /** A `--` or (nested) block comment; returned by `scan()` only. */
  Comment: 2,
  /** A keyword or unquoted identifier: what they are depends on the grammar, not the lexer. */
  Word: 3,
  /** "..." or U&"...". */
  QuotedIdentifier: 4,
  /** '...', E'...', U&'...', N'...', B'...', X'...'. */
  String: 5,
  /** $$...$$ or $tag$...$tag$. */
  DollarString: 6,
  Number: 7,
  /** $1, $2, ... */
  Parameter: 8,
  Operator: 9,
  OpenParen: 10,
  CloseParen: 11,
  Comma: 12,
  Semicolon: 13,
  Dot: 14,
  /** Any other single byte: [ ] : { } a lone $, control bytes. */
  Other: 15,
} as const;
export type SqlToken = (typeof SqlToken)[keyof typeof SqlToken];

const IDENT_START = 1;
const IDENT_CONT = 2;
const DIGIT = 4;
const SPACE = 8;
const OP = 16;

const CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const ch = String.fromCharCode(b);
  const letter = /[A-Za-z_]/.test(ch) || b >= 0x80; // PostgreSQL takes every high byte as a letter
  if (letter) CLASS[b]! |= IDENT_START | IDENT_CONT;
  if (/[0-9]/.test(ch)) CLASS[b]! |= DIGIT | IDENT_CONT;
  if (ch === "$") CLASS[b]! |= IDENT_CONT;
  if (" \t\n\r\f\v".includes(ch)) CLASS[b]! |= SPACE;
  if ("~!@#^&|`?+-*/%<>=".includes(ch)) CLASS[b]! |= OP;
}

const LF = 0x0a;
const CR = 0x0d;
const DQUOTE = 0x22;
const DOLLAR = 0x24;
const AMP = 0x26;
const QUOTE = 0x27;
const STAR = 0x2a;
const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const EMPTY = Buffer.alloc(0);

/**
 * A cursor over one range of SQL text. Reuse one object: `reset` it per text, then call `next()` until
 * it returns `SqlToken.End`; the current token is `buf[tokenStart, tokenEnd)` of kind `kind`.
 */
export class SqlLexer {
  buf: Buffer = EMPTY;
  /** Where the next token starts. Assigning a value read earlier rewinds the cursor: it keeps no other state. */
  pos = 0;
  /** The range ends here (exclusive). */
  end = 0;
  kind: SqlToken = SqlToken.End;
  tokenStart = 0;
  tokenEnd = 0;

  reset(buf: Buffer, start: number, end: number): void {
    this.buf = buf;
    this.pos = start;
    this.end = Math.min(end, buf.length);
    this.kind = SqlToken.End;
    this.tokenStart = this.tokenEnd = start;
  }

  /** The next token that means something: whitespace and comments are skipped. */
  next(): SqlToken {
    let kind: SqlToken;
    do kind = this.scan();
    while (kind === SqlToken.Space || kind === SqlToken.Comment);
    return kind;
  }

  /** The next token of any kind, whitespace and comments included: successive tokens tile the range. */
  scan(): SqlToken {
    const { buf, end } = this;
    const start = this.pos;
    if (start >= end) return this.token(SqlToken.End, end, end);
    const c = buf[start]!;
    const n = start + 1 < end ? buf[start + 1]! : -1;
    const cls = CLASS[c]!;

    if (cls & SPACE) {
      let p = start + 1;
      while (p < end && CLASS[buf[p]!]! & SPACE) p++;
      return this.token(SqlToken.Space, start, p);
    }
    if (c === MINUS && n === MINUS) {
      let p = start + 2;
      while (p < end && buf[p] !== LF && buf[p] !== CR) p++;
      return this.token(SqlToken.Comment, start, p);
    }
    if (c === SLASH && n === STAR) return this.token(SqlToken.Comment, start, blockCommentEnd(buf, start + 2, end));
    if (c === QUOTE) return this.token(SqlToken.String, start, quotedEnd(buf, start + 1, end, QUOTE, false));
    if (c === DQUOTE) {
      return this.token(SqlToken.QuotedIdentifier, start, quotedEnd(buf, start + 1, end, DQUOTE, false));
    }
    if (cls & IDENT_START) return this.wordOrPrefixed(c, n, start);
    if (cls & DIGIT || (c === DOT && n >= 0 && CLASS[n]! & DIGIT)) {
      return this.token(SqlToken.Number, start, numberEnd(buf, start, end));
    }
    if (c === DOLLAR) {
      if (n >= 0 && CLASS[n]! & DIGIT) {
        let p = start + 1;
        while (p < end && CLASS[buf[p]!]! & IDENT_CONT) p++;
        return this.token(SqlToken.Parameter, start, p);
      }
      const tagEnd = dollarTagEnd(buf, start, end);
      if (tagEnd < 0) return this.token(SqlToken.Other, start, start + 1);
      return this.token(SqlToken.DollarString, start, dollarBodyEnd(buf, start, tagEnd, end));
    }
    switch (c) {
      case 0x28:
        return this.token(SqlToken.OpenParen, start, start + 1);
      case 0x29:
        return this.token(SqlToken.CloseParen, start, start + 1);
      case 0x2c:
        return this.token(SqlToken.Comma, start, start + 1);
      case 0x3b:
        return this.token(SqlToken.Semicolon, start, start + 1);
      case DOT:
        return this.token(SqlToken.Dot, start, start + 1);
    }
    if (cls & OP) return this.token(SqlToken.Operator, start, operatorEnd(buf, start, end));
    return this.token(SqlToken.Other, start, start + 1);
  }

  /** A word, unless its first letters are a string prefix (E'', U&'', U&"", N'', B'', X''). */
  private wordOrPrefixed(c: number, n: number, start: number): SqlToken {
    const { buf, end } = this;
    const lower = c | 0x20;
    if (n === QUOTE) {
      if (lower === 0x65) return this.token(SqlToken.String, start, quotedEnd(buf, start + 2, end, QUOTE, true));
      if (lower === 0x6e || lower === 0x62 || lower === 0x78) {
        return this.token(SqlToken.String, start, quotedEnd(buf, start + 2, end, QUOTE, false));
      }
    }
    if (lower === 0x75 && n === AMP && start + 2 < end) {
      const q = buf[start + 2];
      if (q === QUOTE) return this.token(SqlToken.String, start, quotedEnd(buf, start + 3, end, QUOTE, false));
      if (q === DQUOTE) {
        return this.token(SqlToken.QuotedIdentifier, start, quotedEnd(buf, start + 3, end, DQUOTE, false));
      }
    }
    let p = start + 1;
    while (p < end && CLASS[buf[p]!]! & IDENT_CONT) p++;
    return this.token(SqlToken.Word, start, p);
  }

  private token(kind: SqlToken, start: number, end: number): SqlToken {
    this.kind = kind;
    this.tokenStart = start;
    this.tokenEnd = end;
    this.pos = end;
    return kind;
  }
}

/** PostgreSQL nests block comments: each inner slash-star needs its own star-slash. */
function blockCommentEnd(buf: Buffer, p: number, end: number): number {
  let depth = 1;
  while (p < end) {
    const c = buf[p]!;
    if (c === STAR && p + 1 < end && buf[p + 1] === SLASH) {
      p += 2;
      if (--depth === 0) return p;
    } else if (c === SLASH && p + 1 < end && buf[p + 1] === STAR) {
      p += 2;
      depth++;
    } else p++;
  }
  return end;
}

/** The end of a quoted run starting after its opening quote: a doubled quote is part of it. */
function quotedEnd(buf: Buffer, p: number, end: number, quote: number, backslashEscapes: boolean): number {
  while (p < end) {
    const c = buf[p]!;
    if (backslashEscapes && c === BACKSLASH) p += 2;
    else if (c !== quote) p++;
    else if (p + 1 < end && buf[p + 1] === quote) p += 2;
    else return p + 1;
  }
  return end;
}

function numberEnd(buf: Buffer, p: number, end: number): number {
  p = digitsEnd(buf, p, end);
  // `1..2` keeps its `..` (PostgreSQL reads the integer, then the dots)
  if (p < end && buf[p] === DOT && !(p + 1 < end && buf[p + 1] === DOT)) p = digitsEnd(buf, p + 1, end);
  if (p < end && (buf[p]! | 0x20) === 0x65) {
    let q = p + 1;
    if (q < end && (buf[q] === PLUS || buf[q] === MINUS)) q++;
    if (q < end && CLASS[buf[q]!]! & DIGIT) p = digitsEnd(buf, q, end);
  }
  // Letters glued on (0x1F, 0b101, 1_000's tail, or junk PostgreSQL rejects) stay in the same token.
  while (p < end && CLASS[buf[p]!]! & IDENT_CONT) p++;
  return p;
}

function digitsEnd(buf: Buffer, p: number, end: number): number {
  while (p < end && (CLASS[buf[p]!]! & DIGIT || buf[p] === 0x5f)) p++;
  return p;
}

/** After `$tag$` (tag: a letter or _, then letters, digits, _), or -1 when `$` does not open a dollar quote. */
function dollarTagEnd(buf: Buffer, start: number, end: number): number {
  let p = start + 1;
  if (p < end && buf[p] !== DOLLAR) {
    if (!(CLASS[buf[p]!]! & IDENT_START)) return -1;
    p++;
    while (p < end && CLASS[buf[p]!]! & (IDENT_START | DIGIT)) p++;
  }
  return p < end && buf[p] === DOLLAR ? p + 1 : -1;
}

function dollarBodyEnd(buf: Buffer, start: number, tagEnd: number, end: number): number {
  const tagLength = tagEnd - start;
  for (let p = tagEnd; p + tagLength <= end; p++) {
    if (buf[p] === DOLLAR && rangesEqual(buf, start, p, tagLength)) return p + tagLength;
  }
  return end;
}

function rangesEqual(buf: Buffer, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

const NON_SQL_OP = new Uint8Array(256);
for (const ch of "~!@#^&|`?%") NON_SQL_OP[ch.charCodeAt(0)] = 1;

function operatorEnd(buf: Buffer, start: number, end: number): number {
  let p = start + 1;
  while (p < end && CLASS[buf[p]!]! & OP) {
    const c = buf[p]!;
    const next = p + 1 < end ? buf[p + 1] : -1;
    if ((c === MINUS && next === MINUS) || (c === SLASH && next === STAR)) break; // a comment starts
    p++;
  }
  // As PostgreSQL does, trailing + and - come off an operator made only of SQL-standard characters, so
  // that `x=-1` reads `=` then `-1`.
  if (p - start > 1 && (buf[p - 1] === PLUS || buf[p - 1] === MINUS)) {
    for (let i = start; i < p - 1; i++) if (NON_SQL_OP[buf[i]!]) return p;
    do p--;
    while (p - start > 1 && (buf[p - 1] === PLUS || buf[p - 1] === MINUS));
  }
  return p;
}

/** ASCII bytes `buf[start, end)` equal `word` (given in lower case when `ignoreCase`). */
export function asciiEquals(buf: Buffer, start: number, end: number, word: string, ignoreCase: boolean): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) {
    let b = buf[start + i]!;
    if (ignoreCase && b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (b !== word.charCodeAt(i)) return false;
  }
  return true;
}

/** The current token is the bare word `word` (lower-case ASCII), in any case. A quoted "word" is not. */
export function keywordIs(lexer: SqlLexer, word: string): boolean {
  return lexer.kind === SqlToken.Word && asciiEquals(lexer.buf, lexer.tokenStart, lexer.tokenEnd, word, true);
}

/** The current token exactly as written. */
export function tokenText(lexer: SqlLexer): string {
  return lexer.buf.toString("utf8", lexer.tokenStart, lexer.tokenEnd);
}

/** PostgreSQL folds only ASCII letters of unquoted identifiers (in multibyte encodings). */
export function asciiLowerCase(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : text;
}

/**
 * The name an identifier token stands for: a word folded to lower case, a quoted identifier without its
 * quotes. A U&"..." with escapes is returned as written: the key stays stable without decoding them.
 */
export function identifierName(lexer: SqlLexer): string {
  const { buf, tokenStart: s, tokenEnd: e } = lexer;
  if (lexer.kind !== SqlToken.QuotedIdentifier) return asciiLowerCase(buf.toString("utf8", s, e));
  const bodyStart = buf[s] === DQUOTE ? s + 1 : s + 3;
  if (bodyStart > s + 1 && hasByte(buf, bodyStart, e, BACKSLASH)) return buf.toString("utf8", s, e);
  return undoubled(buf, bodyStart, e, DQUOTE) ?? buf.toString("utf8", bodyStart, e);
}

/**
 * The value of a string token, or null when it would take more than this module knows to decode it
 * (numeric or Unicode escapes, bit strings) or it is unterminated.
 */
export function stringLiteralValue(lexer: SqlLexer): string | null {
  const { buf, tokenStart: s, tokenEnd: e } = lexer;
  if (lexer.kind === SqlToken.DollarString) {
    const tagLength = buf.indexOf(DOLLAR, s + 1) + 1 - s;
    if (e - s < 2 * tagLength || !rangesEqual(buf, s, e - tagLength, tagLength)) return null;
    return buf.toString("utf8", s + tagLength, e - tagLength);
  }
  if (lexer.kind !== SqlToken.String) return null;
  if (buf[s] === QUOTE) return undoubled(buf, s + 1, e, QUOTE);
  switch (buf[s]! | 0x20) {
    case 0x6e: // N'...'
      return undoubled(buf, s + 2, e, QUOTE);
    case 0x65: // E'...'
      return escapedValue(buf, s + 2, e);
    case 0x75: // U&'...'
      return hasByte(buf, s + 3, e, BACKSLASH) ? null : undoubled(buf, s + 3, e, QUOTE);
    default:
      return null;
  }
}

function hasByte(buf: Buffer, start: number, end: number, byte: number): boolean {
  for (let p = start; p < end; p++) if (buf[p] === byte) return true;
  return false;
}

/** The text up to the closing quote, doubled quotes halved; null if the quote never closes. */
function undoubled(buf: Buffer, p: number, end: number, quote: number): string | null {
  let out = "";
  let from = p;
  while (p < end) {
    if (buf[p] !== quote) p++;
    else if (p + 1 < end && buf[p + 1] === quote) {
      out += buf.toString("utf8", from, p + 1);
      p += 2;
      from = p;
    } else return out + buf.toString("utf8", from, p);
  }
  return null;
}

const SIMPLE_ESCAPES: Record<string, number> = { b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 };

function escapedValue(buf: Buffer, p: number, end: number): string | null {
  const bytes: number[] = [];
  while (p < end) {
    const c = buf[p]!;
    if (c === QUOTE) {
      if (p + 1 < end && buf[p + 1] === QUOTE) {
        bytes.push(QUOTE);
        p += 2;
        continue;
      }
      return Buffer.from(bytes).toString("utf8");
    }
    if (c !== BACKSLASH) {
      bytes.push(c);
      p++;
      continue;
    }
    if (p + 1 >= end) return null;
    const escaped = String.fromCharCode(buf[p + 1]!);
    if (/[0-7xuU]/.test(escaped)) return null;
    bytes.push(SIMPLE_ESCAPES[escaped] ?? buf[p + 1]!);
    p += 2;
  }
  return null;
}
