import { FrontendMessageType } from "@pgmux/protocol";

/**
 * One distinct statement (query text and parameter types) of a pool, under the name pgmux gives it on
 * every server that holds it. Clients that prepare the same text share it, whatever they call it.
 */
export class PreparedStatement {
  /** The Parse message that creates it on a server, built once and written as often as needed. */
  readonly parse: Buffer;
  /** The server-side name as a C string (with its NUL), spliced into Bind and Describe. */
  readonly nameBytes: Buffer;
  /** A server has answered its Parse with ParseComplete: the text is valid SQL (or was, before any DDL). */
  validated = false;

  constructor(
    readonly serverName: string,
    /** Parse body after the statement name: query text, its NUL, parameter count and types. */
    definition: Buffer,
  ) {
    this.nameBytes = Buffer.from(`${serverName}\0`, "latin1");
    const length = 4 + this.nameBytes.length + definition.length;
    this.parse = Buffer.allocUnsafe(1 + length);
    this.parse[0] = FrontendMessageType.Parse;
    this.parse.writeUInt32BE(length, 1);
    this.nameBytes.copy(this.parse, 5);
    definition.copy(this.parse, 5 + this.nameBytes.length);
  }

  /** The query text, for logs and the admin views. */
  get query(): string {
    const start = 5 + this.nameBytes.length;
    return this.parse.toString("utf8", start, this.parse.indexOf(0, start));
  }
}

/** Counters of the statement machinery, per pool, read by the admin side. */
export interface PreparedStatementStats {
  /** A client's Parse or Bind found its statement already on the server. */
  hits: number;
  /** The server lacked it: pgmux prepared it there (the client's own Parse, or one it injected). */
  misses: number;
  /** Statements closed on a server to keep it within max_prepared_statements. */
  evictions: number;
}

/**
 * The pool's statements by definition, so that identical texts share one server-side name. Bounded:
 * past `limit` distinct definitions the least recently prepared are forgotten here (clients and servers
 * that hold them keep their reference; only the sharing is lost).
 */
export class StatementCache {
  private readonly byDefinition = new Map<string, PreparedStatement>();
  private nextId = 1;
  readonly stats: PreparedStatementStats = { hits: 0, misses: 0, evictions: 0 };

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.byDefinition.size;
  }

  /** The statement for a Parse body's definition (`body[start, end)`: after the name), made if new. */
  statementFor(body: Buffer, start: number, end: number): PreparedStatement {
    const key = body.toString("latin1", start, end);
    let s = this.byDefinition.get(key);
    if (s !== undefined) {
      // Map order is insertion order: re-inserting keeps the busy definitions away from eviction.
      this.byDefinition.delete(key);
      this.byDefinition.set(key, s);
      return s;
    }
    s = new PreparedStatement(`pgmux_s${this.nextId++}`, Buffer.from(body.subarray(start, end)));
    this.byDefinition.set(key, s);
    if (this.byDefinition.size > this.limit) {
      const oldest = this.byDefinition.keys().next().value as string;
      this.byDefinition.delete(oldest);
    }
    return s;
  }
}

/**
 * The statements one server holds, least recently used first. The bound is kept when a server is handed
 * to a client (evictions are written before the client's messages); within one client's turn it may grow
 * past it, since what that turn prepared is about to be used.
 */
export class ServerStatements {
  private readonly held = new Set<PreparedStatement>();

  constructor(readonly limit: number) {}

  get size(): number {
    return this.held.size;
  }

  /** Whether the server holds it; counts as a use. */
  use(s: PreparedStatement): boolean {
    if (!this.held.has(s)) return false;
    this.held.delete(s);
    this.held.add(s);
    return true;
  }

  has(s: PreparedStatement): boolean {
    return this.held.has(s);
  }

  add(s: PreparedStatement): void {
    this.held.add(s);
  }

  delete(s: PreparedStatement): void {
    this.held.delete(s);
  }

  clear(): void {
    this.held.clear();
  }

  /** The least recently used statements beyond the bound, removed from the set: the caller closes them. */
  takeOverflow(): PreparedStatement[] | null {
    if (this.held.size <= this.limit) return null;
    const out: PreparedStatement[] = [];
    for (const s of this.held) {
      if (this.held.size - out.length <= this.limit) break;
      out.push(s);
    }
    for (const s of out) this.held.delete(s);
    return out;
  }

  *[Symbol.iterator](): Iterator<PreparedStatement> {
    yield* this.held;
  }
}
