import { encodeClose, FrontendMessageType, ProtocolError } from "@pgmux/protocol";
import type { PreparedStatement, StatementCache } from "./prepared-statements.js";
import { SqlLexer, SqlToken } from "./sql-lexer.js";

/** Most named statements one client may hold at once: its map is the one thing it could grow unbounded. */
export const MAX_CLIENT_STATEMENTS = 100_000;

/**
 * A client's own names for its prepared statements, each pointing at the pool's shared statement. The
 * client never sees pgmux's names; pgmux never lets the client's names reach a server.
 */
export class ClientStatements {
  private readonly byName = new Map<string, PreparedStatement>();

  constructor(readonly cache: StatementCache) {}

  get size(): number {
    return this.byName.size;
  }

  get(name: string): PreparedStatement | undefined {
    return this.byName.get(name);
  }

  /** Records the client's Parse of `name` (replacing an earlier one of the same name, as after a Close). */
  define(name: string, statement: PreparedStatement): void {
    this.byName.set(name, statement);
  }

  forget(name: string): boolean {
    return this.byName.delete(name);
  }

  clear(): void {
    this.byName.clear();
  }

  *entries(): Iterable<[string, PreparedStatement]> {
    yield* this.byName;
  }
}

/** End of the C string starting at `start` (the index of its NUL), or a ProtocolError past `end`. */
export function cstringEnd(body: Buffer, start: number, end: number, what: string): number {
  const nul = body.indexOf(0, start);
  if (nul < 0 || nul >= end) throw new ProtocolError(`${what} is not terminated`);
  return nul;
}

/** The client's statement name between `start` and its NUL, as the map key. */
export function statementName(body: Buffer, start: number, nul: number): string {
  return body.toString("latin1", start, nul);
}

/** Bind bodies up to this size are rebuilt in one buffer; larger ones keep their parameters where they lie. */
const SMALL_BIND_REST = 2048;

/**
 * A Bind naming `statement` by its server name: header, portal, the new name, then the client's formats
 * and parameters (`body[restStart, end)`). The parameters are referenced, not copied, when `restIsStable`
 * (they lie in a socket chunk nobody reuses) and large.
 */
export function rewriteBind(
  body: Buffer,
  start: number,
  portalEnd: number,
  restStart: number,
  end: number,
  statement: PreparedStatement,
  restIsStable: boolean,
): Buffer[] {
  const portalBytes = portalEnd + 1 - start;
  const restBytes = end - restStart;
  const length = 4 + portalBytes + statement.nameBytes.length + restBytes;
  const inline = restBytes <= SMALL_BIND_REST || !restIsStable;
  const head = Buffer.allocUnsafe(5 + portalBytes + statement.nameBytes.length + (inline ? restBytes : 0));
  head[0] = FrontendMessageType.Bind;
  head.writeUInt32BE(length, 1);
  let at = 5 + body.copy(head, 5, start, portalEnd + 1);
  at += statement.nameBytes.copy(head, at);
  if (inline) {
    body.copy(head, at, restStart, end);
    return [head];
  }
  return [head, body.subarray(restStart, end)];
}

/** A Describe of `statement` ('S') by its server name. */
export function describeStatement(statement: PreparedStatement): Buffer {
  const length = 4 + 1 + statement.nameBytes.length;
  const b = Buffer.allocUnsafe(1 + length);
  b[0] = FrontendMessageType.Describe;
  b.writeUInt32BE(length, 1);
  b[5] = 0x53; // 'S'
  statement.nameBytes.copy(b, 6);
  return b;
}

/** A Close of `statement` on a server (evicting it). */
export function closeStatement(statement: PreparedStatement): Buffer {
  return encodeClose({ kind: "S", name: statement.serverName });
}

/**
 * What a client's Close of its own statement becomes on the server: a Close of a name no statement ever
 * has, which PostgreSQL answers with CloseComplete in its place in the reply order, and nothing else.
 */
export const CLOSE_NOTHING = encodeClose({ kind: "S", name: "pgmux_closed" });

/**
 * The client's Parse with its query text replaced by `sql`, keeping its name and as many parameters as the
 * original declared or used ($n), those of unspecified type made text: the Bind that follows is accepted
 * and the replacement runs. `body[start, end)` is the Parse body; its name ends at `nameEnd`, its text at
 * `textEnd`.
 */
export function rewriteParseText(
  body: Buffer,
  start: number,
  nameEnd: number,
  textEnd: number,
  end: number,
  sql: string,
): Buffer {
  const text = Buffer.from(`${sql}\0`);
  const declared = end - textEnd - 1 >= 2 ? body.readUInt16BE(textEnd + 1) : 0;
  const count = Math.max(declared, highestParameter(body, nameEnd + 1, textEnd));
  const types = Buffer.alloc(2 + 4 * count);
  types.writeUInt16BE(count, 0);
  for (let i = 0; i < count; i++) {
    const oid = i < declared && textEnd + 3 + 4 * i + 4 <= end ? body.readUInt32BE(textEnd + 3 + 4 * i) : 0;
    types.writeUInt32BE(oid === 0 ? TEXT_OID : oid, 2 + 4 * i);
  }
  const name = body.subarray(start, nameEnd + 1);
  const length = 4 + name.length + text.length + types.length;
  const head = Buffer.allocUnsafe(5);
  head[0] = FrontendMessageType.Parse;
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, name, text, types]);
}

const TEXT_OID = 25;

/** The highest $n a query text uses (0 if none), outside its strings and comments. */
function highestParameter(body: Buffer, start: number, end: number): number {
  const lexer = new SqlLexer();
  lexer.reset(body, start, end);
  let highest = 0;
  for (let t = lexer.next(); t !== SqlToken.End; t = lexer.next()) {
    if (t === SqlToken.Parameter) {
      const n = Number(body.toString("latin1", lexer.tokenStart + 1, lexer.tokenEnd));
      if (Number.isSafeInteger(n) && n > highest && n <= 65_535) highest = n;
    }
  }
  return highest;
}
