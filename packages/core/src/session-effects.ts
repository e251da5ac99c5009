import {
  asciiEquals,
  asciiLowerCase,
  identifierName,
  keywordIs,
  SqlLexer,
  SqlToken,
  stringLiteralValue,
  tokenText,
} from "./sql-lexer.js";

/**
 * What a query text does to session state that transaction pooling must follow: SETs to replay on the
 * next server, and state (LISTEN, advisory locks, temporary tables, ...) that ties the client to its
 * server. Pure: it reads the text of a Query or Parse message in place and returns plain data; the caller
 * applies it once the statement succeeded. Reads SQL as the lexer does (standard_conforming_strings on).
 *
 * Almost every query changes nothing, so that path allocates nothing: per statement one keyword is
 * compared, and each identifier is checked by length against the few function names that matter.
 */

export const PinReason = {
  Listen: "listen",
  AdvisoryLock: "advisory_lock",
  TempTable: "temp_table",
  CursorWithHold: "cursor_with_hold",
  SqlPrepare: "sql_prepare",
  Load: "load",
  /** A set_config whose arguments are not all literals: its effect cannot be replayed. */
  SetConfig: "set_config",
  /** A SET-like statement this module does not understand well enough to replay. */
  UnrecognizedSet: "unrecognized_set",
} as const;
export type PinReason = (typeof PinReason)[keyof typeof PinReason];

/** The pins a later statement can release. */
export type UnpinReason = Exclude<PinReason, "load" | "set_config" | "unrecognized_set">;

export type DiscardTarget = "all" | "temp" | "plans" | "sequences";

export type SessionEffect =
  /** A session-level SET of `name` (lower case unless it was quoted); `sql` replays it on another server. */
  | { readonly kind: "set"; readonly name: string; readonly sql: string }
  | { readonly kind: "reset"; readonly name: string }
  | { readonly kind: "reset_all" }
  /** State that cannot follow the client to another server; `key` names it when the statement does. */
  | { readonly kind: "pin"; readonly reason: PinReason; readonly key?: string }
  /** Releases one pin of `reason`: the one named `key`, or any one (an advisory unlock names none). */
  | { readonly kind: "unpin"; readonly reason: UnpinReason; readonly key?: string }
  | { readonly kind: "unpin_all"; readonly reason: UnpinReason }
  /** DEALLOCATE ALL: every prepared statement is gone, SQL-level and protocol-level alike. */
  | { readonly kind: "deallocate_all" }
  | { readonly kind: "discard"; readonly what: DiscardTarget }
  /** The transaction ended in a rollback: SETs made inside it are undone. */
  | { readonly kind: "rollback" };

/**
 * The session effects of the statements in `buf[start, end)` (one per relevant statement or function
 * call, in text order), or null when there are none. Never throws.
 */
export function analyzeSessionEffects(buf: Buffer, start: number, end: number): readonly SessionEffect[] | null {
  return analyzer.run(buf, start, end);
}

const Statement = {
  Other: 0,
  Set: 1,
  Reset: 2,
  Listen: 3,
  Unlisten: 4,
  Create: 5,
  Drop: 6,
  Declare: 7,
  Close: 8,
  Prepare: 9,
  Deallocate: 10,
  Load: 11,
  Discard: 12,
  Rollback: 13,
  Abort: 14,
  Select: 15,
  With: 16,
} as const;
type Statement = (typeof Statement)[keyof typeof Statement];

/** Statement keywords by length, so most first words are rejected without a comparison. */
const STATEMENTS_BY_LENGTH: (readonly (readonly [string, Statement])[])[] = [];
for (const [word, statement] of [
  ["set", Statement.Set],
  ["reset", Statement.Reset],
  ["listen", Statement.Listen],
  ["unlisten", Statement.Unlisten],
  ["create", Statement.Create],
  ["drop", Statement.Drop],
  ["declare", Statement.Declare],
  ["close", Statement.Close],
  ["prepare", Statement.Prepare],
  ["deallocate", Statement.Deallocate],
  ["load", Statement.Load],
  ["discard", Statement.Discard],
  ["rollback", Statement.Rollback],
  ["abort", Statement.Abort],
  ["select", Statement.Select],
  ["with", Statement.With],
] as const) {
  STATEMENTS_BY_LENGTH[word.length] = [...(STATEMENTS_BY_LENGTH[word.length] ?? []), [word, statement]];
}

function statementOf(lx: SqlLexer): Statement {
  if (lx.kind !== SqlToken.Word) return Statement.Other;
  const candidates = STATEMENTS_BY_LENGTH[lx.tokenEnd - lx.tokenStart];
  if (candidates === undefined) return Statement.Other;
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i]!;
    if (keywordIs(lx, candidate[0])) return candidate[1];
  }
  return Statement.Other;
}

const Call = { None: 0, SetConfig: 1, Lock: 2, Unlock: 3, UnlockAll: 4 } as const;
type Call = (typeof Call)[keyof typeof Call];

/** The functions that matter all differ in length: one comparison at most per identifier. */
const CALLS_BY_LENGTH: (readonly [string, Call] | undefined)[] = [];
for (const [name, call] of [
  ["set_config", Call.SetConfig],
  ["pg_advisory_lock", Call.Lock],
  ["pg_advisory_lock_shared", Call.Lock],
  ["pg_try_advisory_lock", Call.Lock],
  ["pg_try_advisory_lock_shared", Call.Lock],
  ["pg_advisory_unlock", Call.Unlock],
  ["pg_advisory_unlock_shared", Call.Unlock],
  ["pg_advisory_unlock_all", Call.UnlockAll],
] as const) {
  CALLS_BY_LENGTH[name.length] = [name, call];
}

/** Which interesting function the current token names, if any; a quoted name must match exactly. */
function callOf(lx: SqlLexer): Call {
  let start = lx.tokenStart;
  let end = lx.tokenEnd;
  const quoted = lx.kind === SqlToken.QuotedIdentifier;
  if (quoted) {
    start++;
    end--;
  } else if (lx.kind !== SqlToken.Word) return Call.None;
  const candidate = CALLS_BY_LENGTH[end - start];
  if (candidate === undefined) return Call.None;
  return asciiEquals(lx.buf, start, end, candidate[0], !quoted) ? candidate[1] : Call.None;
}

function isName(kind: SqlToken): boolean {
  return kind === SqlToken.Word || kind === SqlToken.QuotedIdentifier;
}

function isTempSchema(schema: string): boolean {
  return schema === "pg_temp" || /^pg_temp_\d+$/.test(schema);
}

/** A temporary object's key: its bare name when qualified by the temporary schema, else as written. */
function tempKey(parts: readonly string[]): string {
  const n = parts.length;
  return n >= 2 && isTempSchema(parts[n - 2]!) ? parts[n - 1]! : parts.join(".");
}

const EMPTY = Buffer.alloc(0);
const TRANSACTION_MODES_SQL = "SET SESSION CHARACTERISTICS AS TRANSACTION";
const UNRECOGNIZED_SET: SessionEffect = { kind: "pin", reason: "unrecognized_set" };

/**
 * One analysis at a time over a shared lexer (the function is synchronous). The statement loop lexes each
 * statement once to find its end and whether anything in it could matter; only then are the parts that do
 * lexed again, by the handler of its first keyword and by the function-call scan.
 */
class Analyzer {
  private readonly lx = new SqlLexer();
  private buf: Buffer = EMPTY;
  private found: SessionEffect[] | null = null;

  run(buf: Buffer, start: number, end: number): readonly SessionEffect[] | null {
    const lx = this.lx;
    this.buf = buf;
    this.found = null;
    lx.reset(buf, start, end);
    let kind = lx.next();
    while (kind !== SqlToken.End) {
      if (kind === SqlToken.Semicolon) {
        kind = lx.next();
        continue;
      }
      const statementStart = lx.tokenStart;
      let depth = 0;
      for (; kind === SqlToken.OpenParen; kind = lx.next()) depth++;
      if (kind === SqlToken.End) break;
      const statement = statementOf(lx);
      const firstStart = lx.tokenStart;
      const afterFirst = lx.tokenEnd;
      let last = afterFirst;
      let atomic = 0;
      let afterBegin = false;
      let sawCall = false;
      let sawInto = false;
      for (kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) {
        // A `;` inside parentheses (CREATE RULE ... DO (a; b)) or a BEGIN ATOMIC body does not end the statement.
        if (kind === SqlToken.Semicolon && depth === 0 && atomic === 0) break;
        last = lx.tokenEnd;
        if (kind === SqlToken.OpenParen) depth++;
        else if (kind === SqlToken.CloseParen) depth = Math.max(0, depth - 1);
        else if (isName(kind)) {
          // Calls inside a BEGIN ATOMIC body run when the function does, not now.
          if (callOf(lx) !== Call.None) sawCall ||= atomic === 0;
          else if (statement === Statement.Create) {
            if (atomic > 0) {
              if (keywordIs(lx, "case") || keywordIs(lx, "begin")) atomic++;
              else if (keywordIs(lx, "end")) atomic--;
            } else if (afterBegin && keywordIs(lx, "atomic")) atomic = 1;
            afterBegin = keywordIs(lx, "begin");
          } else if ((statement === Statement.Select || statement === Statement.With) && depth === 0) {
            sawInto ||= keywordIs(lx, "into");
          }
        }
      }
      const resume = lx.pos;
      if (statement !== Statement.Other && statement !== Statement.Select && statement !== Statement.With) {
        lx.reset(buf, afterFirst, last);
        const effect = this.statement(statement, firstStart, last);
        if (effect !== null) this.emit(effect);
      }
      if (sawInto) {
        lx.reset(buf, afterFirst, last);
        const effect = this.selectInto();
        if (effect !== null) this.emit(effect);
      }
      if (sawCall && !(statement === Statement.Select && this.setConfigSelect(afterFirst, last))) {
        lx.reset(buf, statementStart, last);
        this.calls();
      }
      lx.reset(buf, resume, end);
      kind = lx.next();
    }
    const found = this.found;
    // Keep no reference to the caller's buffer between calls.
    this.found = null;
    this.buf = EMPTY;
    lx.reset(EMPTY, 0, 0);
    return found;
  }

  private emit(effect: SessionEffect): void {
    if (this.found === null) this.found = [effect];
    else this.found.push(effect);
  }

  private word(word: string): boolean {
    return keywordIs(this.lx, word);
  }

  private text(start: number, end: number): string {
    return this.buf.toString("utf8", start, end);
  }

  /** Reads a dotted name from the current token on; leaves the lexer on the token after it. */
  private readName(): string[] | null {
    const lx = this.lx;
    if (!isName(lx.kind)) return null;
    const parts = [identifierName(lx)];
    while (lx.next() === SqlToken.Dot) {
      if (!isName(lx.next())) return null;
      parts.push(identifierName(lx));
    }
    return parts;
  }

  /**
   * The lexer is on the token after the first keyword; `last` ends the statement's text. Returns the
   * statement's effect; the few statements with several (DROP a, b) emit them and return null.
   */
  private statement(statement: Statement, firstStart: number, last: number): SessionEffect | null {
    const lx = this.lx;
    lx.next();
    switch (statement) {
      case Statement.Set:
        return this.word("local") ? null : this.setRest(firstStart, last, false);
      case Statement.Reset:
        return this.reset();
      case Statement.Listen:
        return isName(lx.kind) ? { kind: "pin", reason: "listen", key: identifierName(lx) } : null;
      case Statement.Unlisten:
        if (lx.kind === SqlToken.Operator && lx.tokenEnd - lx.tokenStart === 1 && this.buf[lx.tokenStart] === 0x2a) {
          return { kind: "unpin_all", reason: "listen" };
        }
        return isName(lx.kind) ? { kind: "unpin", reason: "listen", key: identifierName(lx) } : null;
      case Statement.Create:
        return this.create();
      case Statement.Drop:
        this.drop();
        return null;
      case Statement.Declare:
        return this.declare();
      case Statement.Close:
        if (this.word("all")) return { kind: "unpin_all", reason: "cursor_with_hold" };
        return isName(lx.kind) ? { kind: "unpin", reason: "cursor_with_hold", key: identifierName(lx) } : null;
      case Statement.Prepare:
        return this.prepare();
      case Statement.Deallocate:
        return this.deallocate();
      case Statement.Load: {
        const library = stringLiteralValue(lx);
        return library === null ? { kind: "pin", reason: "load" } : { kind: "pin", reason: "load", key: library };
      }
      case Statement.Discard:
        return this.discard();
      case Statement.Rollback:
      case Statement.Abort:
        if (this.word("work") || this.word("transaction")) lx.next();
        // ROLLBACK TO SAVEPOINT keeps the transaction; ROLLBACK PREPARED ends another one.
        return this.word("to") || this.word("prepared") ? null : { kind: "rollback" };
      default:
        return null;
    }
  }

  /** After SET [SESSION]: the lexer is on the first token of the rest. */
  private setRest(setStart: number, last: number, scoped: boolean): SessionEffect | null {
    const lx = this.lx;
    const bare = lx.kind === SqlToken.Word;
    const parts = this.readName();
    if (parts === null) return UNRECOGNIZED_SET;
    const assign =
      this.word("to") ||
      (lx.kind === SqlToken.Operator && lx.tokenEnd - lx.tokenStart === 1 && this.buf[lx.tokenStart] === 0x3d);
    if (assign) {
      lx.next();
      return this.setValue(parts.join("."), setStart, last);
    }
    switch (bare && parts.length === 1 ? parts[0] : "") {
      case "session":
        if (this.word("authorization")) {
          lx.next();
          return this.setValue("session_authorization", setStart, last);
        }
        if (this.word("characteristics")) {
          this.sessionCharacteristics();
          return null;
        }
        // SET SESSION x = 1 is SET x = 1; SESSION may qualify SET only once.
        return scoped ? UNRECOGNIZED_SET : this.setRest(setStart, last, true);
      case "transaction":
        return null; // SET [SESSION] TRANSACTION ... lasts for the transaction only
      case "time":
        if (!this.word("zone")) return UNRECOGNIZED_SET;
        lx.next();
        return this.setValue("timezone", setStart, last, "local");
      case "names":
        if (lx.kind === SqlToken.End) return { kind: "reset", name: "client_encoding" };
        return this.setValue("client_encoding", setStart, last);
      case "schema":
        return this.setValue("search_path", setStart, last);
      case "role":
        return this.setValue("role", setStart, last);
      case "xml":
        if (!this.word("option")) return UNRECOGNIZED_SET;
        lx.next();
        return this.setValue("xmloption", setStart, last);
      default:
        // Among others SET x FROM CURRENT: replayed elsewhere it would copy that server's value, not this one's.
        return UNRECOGNIZED_SET;
    }
  }

  /** The value starts at the current token; DEFAULT alone (or `resetWord`, for TIME ZONE LOCAL) means RESET. */
  private setValue(name: string, setStart: number, last: number, resetWord = "default"): SessionEffect {
    const lx = this.lx;
    if (lx.kind === SqlToken.End) return UNRECOGNIZED_SET;
    if ((this.word("default") || this.word(resetWord)) && lx.next() === SqlToken.End) return { kind: "reset", name };
    return { kind: "set", name, sql: this.text(setStart, last) };
  }

  /**
   * SET SESSION CHARACTERISTICS AS TRANSACTION sets default_transaction_* parameters: one effect per mode,
   * keyed by its parameter, so it composes with a plain SET or RESET of the same parameter.
   */
  private sessionCharacteristics(): void {
    const lx = this.lx;
    const sets: SessionEffect[] = [];
    lx.next();
    let ok = this.word("as") && lx.next() === SqlToken.Word && this.word("transaction");
    for (let kind = lx.next(); ok && kind !== SqlToken.End; kind = lx.next()) {
      if (kind === SqlToken.Comma) continue;
      const modeStart = lx.tokenStart;
      const name = this.transactionMode();
      if (name === null) ok = false;
      else sets.push({ kind: "set", name, sql: `${TRANSACTION_MODES_SQL} ${this.text(modeStart, lx.tokenEnd)}` });
    }
    if (!ok || sets.length === 0) this.emit(UNRECOGNIZED_SET);
    else for (const set of sets) this.emit(set);
  }

  /** Reads one transaction mode, leaving the lexer on its last word; returns the parameter it sets. */
  private transactionMode(): string | null {
    const lx = this.lx;
    if (this.word("isolation")) {
      lx.next();
      if (!this.word("level")) return null;
      lx.next();
      if (this.word("repeatable")) {
        lx.next();
        if (!this.word("read")) return null;
      } else if (this.word("read")) {
        lx.next();
        if (!this.word("committed") && !this.word("uncommitted")) return null;
      } else if (!this.word("serializable")) return null;
      return "default_transaction_isolation";
    }
    if (this.word("read")) {
      lx.next();
      return this.word("only") || this.word("write") ? "default_transaction_read_only" : null;
    }
    if (this.word("not")) lx.next();
    return this.word("deferrable") ? "default_transaction_deferrable" : null;
  }

  private reset(): SessionEffect | null {
    const lx = this.lx;
    if (this.word("all")) return lx.next() === SqlToken.End ? { kind: "reset_all" } : UNRECOGNIZED_SET;
    const bare = lx.kind === SqlToken.Word;
    const parts = this.readName();
    if (parts === null) return UNRECOGNIZED_SET;
    let name = parts.join(".");
    const keyword = bare && parts.length === 1 ? name : "";
    if (keyword === "transaction") return null; // RESET TRANSACTION ISOLATION LEVEL: transaction-scoped
    if ((keyword === "time" && this.word("zone")) || (keyword === "session" && this.word("authorization"))) {
      name = keyword === "time" ? "timezone" : "session_authorization";
      lx.next();
    }
    return lx.kind === SqlToken.End ? { kind: "reset", name } : UNRECOGNIZED_SET;
  }

  /** CREATE [OR REPLACE] [GLOBAL|LOCAL] [TEMP|TEMPORARY] [UNLOGGED] [RECURSIVE] TABLE|VIEW|SEQUENCE ... */
  private create(): SessionEffect | null {
    const lx = this.lx;
    if (this.word("or")) {
      lx.next(); // REPLACE
      lx.next();
    }
    if (this.word("global") || this.word("local")) lx.next();
    const temp = this.word("temp") || this.word("temporary");
    if (temp) lx.next();
    if (this.word("unlogged")) lx.next();
    if (this.word("recursive")) lx.next();
    if (!this.word("table") && !this.word("view") && !this.word("sequence")) return null;
    lx.next();
    if (this.word("if")) {
      lx.next(); // NOT
      lx.next(); // EXISTS
      lx.next();
    }
    const key = this.tempName(temp);
    return key === null || this.dropsOnCommit() ? null : { kind: "pin", reason: "temp_table", key };
  }

  /** The key of the object named from the current token on, if it is temporary; the lexer ends after the name. */
  private tempName(temp: boolean): string | null {
    const parts = this.readName();
    if (parts === null) return null;
    const n = parts.length;
    const inTempSchema = n >= 2 && isTempSchema(parts[n - 2]!);
    if (!temp && !inTempSchema) return null;
    return inTempSchema ? parts[n - 1]! : parts.join(".");
  }

  /** ON COMMIT DROP among the table's options (before AS, where a CREATE TABLE AS query starts). */
  private dropsOnCommit(): boolean {
    const lx = this.lx;
    let depth = 0;
    for (let kind = lx.kind; kind !== SqlToken.End; kind = lx.next()) {
      if (kind === SqlToken.OpenParen) depth++;
      else if (kind === SqlToken.CloseParen) depth--;
      else if (depth !== 0) continue;
      else if (this.word("as")) return false;
      else if (this.word("on")) {
        const afterOn = lx.pos;
        if (lx.next() === SqlToken.Word && this.word("commit") && lx.next() === SqlToken.Word && this.word("drop")) {
          return true;
        }
        lx.pos = afterOn;
      }
    }
    return false;
  }

  /** SELECT ... INTO [TEMP] name creates a table, as CREATE TABLE AS does. */
  private selectInto(): SessionEffect | null {
    const lx = this.lx;
    let depth = 0;
    for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) {
      if (kind === SqlToken.OpenParen) depth++;
      else if (kind === SqlToken.CloseParen) depth--;
      else if (depth === 0 && this.word("into")) break;
    }
    if (lx.next() === SqlToken.End) return null;
    if (this.word("global") || this.word("local")) lx.next();
    const temp = this.word("temp") || this.word("temporary");
    if (temp) lx.next();
    if (this.word("table")) lx.next();
    const key = this.tempName(temp);
    return key === null ? null : { kind: "pin", reason: "temp_table", key };
  }

  /** DROP TABLE|VIEW|SEQUENCE [IF EXISTS] a, b: the caller knows which of them are its temporary objects. */
  private drop(): void {
    const lx = this.lx;
    if (!this.word("table") && !this.word("view") && !this.word("sequence")) return;
    lx.next();
    if (this.word("if")) {
      lx.next(); // EXISTS
      lx.next();
    }
    for (let parts = this.readName(); parts !== null; parts = this.readName()) {
      this.emit({ kind: "unpin", reason: "temp_table", key: tempKey(parts) });
      if (lx.kind !== SqlToken.Comma) break;
      lx.next();
    }
  }

  /** DECLARE name [options] CURSOR [WITH HOLD | WITHOUT HOLD] FOR query */
  private declare(): SessionEffect | null {
    const lx = this.lx;
    if (!isName(lx.kind)) return null;
    const key = identifierName(lx);
    for (let kind = lx.next(); kind !== SqlToken.End && !this.word("for"); kind = lx.next()) {
      if (this.word("with")) {
        lx.next();
        return this.word("hold") ? { kind: "pin", reason: "cursor_with_hold", key } : null;
      }
    }
    return null;
  }

  /** PREPARE name ... AS, but not PREPARE TRANSACTION 'gid' (a statement may itself be named "transaction"). */
  private prepare(): SessionEffect | null {
    const lx = this.lx;
    if (!isName(lx.kind)) return null;
    const key = identifierName(lx);
    if (this.word("transaction") && lx.next() === SqlToken.String) return null;
    return { kind: "pin", reason: "sql_prepare", key };
  }

  /** DEALLOCATE [PREPARE] name | ALL, where a lone DEALLOCATE PREPARE names a statement "prepare". */
  private deallocate(): SessionEffect | null {
    const lx = this.lx;
    if (this.word("prepare")) {
      const prepareStart = lx.tokenStart;
      if (lx.next() === SqlToken.End) {
        lx.pos = prepareStart;
        lx.next();
      }
    }
    if (this.word("all")) return { kind: "deallocate_all" };
    return isName(lx.kind) ? { kind: "unpin", reason: "sql_prepare", key: identifierName(lx) } : null;
  }

  private discard(): SessionEffect | null {
    if (this.word("all")) return { kind: "discard", what: "all" };
    if (this.word("plans")) return { kind: "discard", what: "plans" };
    if (this.word("sequences")) return { kind: "discard", what: "sequences" };
    if (this.word("temp") || this.word("temporary")) return { kind: "discard", what: "temp" };
    return null;
  }

  /**
   * `SELECT set_config('name', 'value', false) [, ...]` with literal arguments and nothing else: its SETs
   * can be replayed, with the literals as written. Any other shape is left to the call scan (a pin).
   */
  private setConfigSelect(afterFirst: number, last: number): boolean {
    const lx = this.lx;
    lx.reset(this.buf, afterFirst, last);
    const sets: SessionEffect[] = [];
    lx.next();
    for (;;) {
      if (this.word("pg_catalog")) {
        if (lx.next() !== SqlToken.Dot) return false;
        lx.next();
      }
      if (callOf(lx) !== Call.SetConfig || lx.next() !== SqlToken.OpenParen || !isLiteral(lx.next())) return false;
      const name = stringLiteralValue(lx);
      const nameSql = tokenText(lx);
      if (name === null || lx.next() !== SqlToken.Comma || !isLiteral(lx.next())) return false;
      const valueSql = tokenText(lx);
      if (lx.next() !== SqlToken.Comma) return false;
      lx.next();
      const local = this.word("true");
      if ((!local && !this.word("false")) || lx.next() !== SqlToken.CloseParen) return false;
      // An alias, with or without AS; a bare word followed by more (FROM t) is not one and fails below.
      if (lx.next() === SqlToken.Word && this.word("as")) {
        if (!isName(lx.next())) return false;
        lx.next();
      } else if (isName(lx.kind)) lx.next();
      if (!local) {
        sets.push({
          kind: "set",
          name: asciiLowerCase(name),
          sql: `SELECT pg_catalog.set_config(${nameSql}, ${valueSql}, false)`,
        });
      }
      if (lx.kind === SqlToken.End) break;
      if (lx.kind !== SqlToken.Comma) return false;
      lx.next();
    }
    for (const set of sets) this.emit(set);
    return true;
  }

  /** Calls anywhere in the statement: advisory locks, and set_config that is not transaction-local. */
  private calls(): void {
    const lx = this.lx;
    for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) {
      const call = callOf(lx);
      if (call === Call.None) continue;
      const afterName = lx.pos;
      if (lx.next() !== SqlToken.OpenParen) {
        lx.pos = afterName;
        continue;
      }
      const afterParen = lx.pos;
      switch (call) {
        case Call.Lock:
          this.emit({ kind: "pin", reason: "advisory_lock" });
          break;
        case Call.Unlock:
          this.emit({ kind: "unpin", reason: "advisory_lock" });
          break;
        case Call.UnlockAll:
          this.emit({ kind: "unpin_all", reason: "advisory_lock" });
          break;
        case Call.SetConfig:
          if (!this.localSetConfig()) this.emit({ kind: "pin", reason: "set_config" });
          lx.pos = afterParen; // its arguments may hold calls too
          break;
      }
    }
  }

  /** After `set_config(`: the third argument is the literal TRUE. */
  private localSetConfig(): boolean {
    const lx = this.lx;
    let depth = 0;
    let commas = 0;
    for (let kind = lx.next(); kind !== SqlToken.End; kind = lx.next()) {
      if (kind === SqlToken.OpenParen) depth++;
      else if (kind === SqlToken.CloseParen) {
        if (depth-- === 0) return false;
      } else if (kind === SqlToken.Comma && depth === 0 && ++commas === 2) {
        lx.next();
        return this.word("true") && lx.next() === SqlToken.CloseParen;
      }
    }
    return false;
  }
}

function isLiteral(kind: SqlToken): boolean {
  return kind === SqlToken.String || kind === SqlToken.DollarString;
}

const analyzer = new Analyzer();
