import type { PinReason, SessionEffect } from "./session-effects.js";
import { isReportedParameter, trackedParameterName } from "./tracked-parameters.js";

/**
 * Parameters the server reports with ParameterStatus that pgmux already tracks (TimeZone, DateStyle,
 * application_name, ...): their changes reach the client's parameters through those reports, and are
 * synced as such, so they are not also replayed as statements.
 */
function followedByReports(name: string): boolean {
  const canonical = trackedParameterName(name);
  return canonical !== undefined && isReportedParameter(canonical);
}

/** Why a client keeps its server, and how many things of that kind hold it (channels, locks, tables, ...). */
export type Pins = ReadonlyMap<PinReason, number>;

/**
 * The session state one client built that transaction pooling must carry or honour: the SETs it made
 * (replayed on each server it gets), and the state that ties it to its server (a pin, with reasons).
 *
 * Effects are learnt from the statements' text when they are sent and take hold only once they have
 * succeeded: a statement's effects wait for the ReadyForQuery that ends it; inside a transaction they wait
 * for its commit, and a rollback (or an error) drops them. Statements are numbered by the request that
 * carries them (each Query, FunctionCall or Sync), so pipelined requests settle one by one.
 */
export class SessionState {
  /** The client's session-level SETs by parameter: the statement that replays each on another server. */
  readonly sets = new Map<string, string>();
  /** Pins by reason; a reason with keys (channels, table or cursor names) counts them by name. */
  private readonly pinKeys = new Map<PinReason, Map<string, number>>();
  /** Requests sent whose effects are known, with those effects, oldest first. */
  private readonly pending: { readonly request: number; readonly effects: readonly SessionEffect[] }[] = [];
  /** Effects of the open transaction's finished statements: they hold if it commits. */
  private transactionEffects: SessionEffect[] = [];
  private transactionFailed = false;
  /** Requests (Query, FunctionCall, Sync) sent, and answered with ReadyForQuery. */
  requestsSent = 0;
  private requestsDone = 0;
  /** The server reported an error in the request now running. */
  private failedRequest = false;

  get pinned(): boolean {
    return this.pinKeys.size > 0;
  }

  /** The reasons this client keeps its server, with how many of each. */
  get pins(): Pins {
    const out = new Map<PinReason, number>();
    for (const [reason, keys] of this.pinKeys) {
      let n = 0;
      for (const count of keys.values()) n += count;
      out.set(reason, n);
    }
    return out;
  }

  /** Effects of a statement carried by request number `request` (1-based). */
  expect(request: number, effects: readonly SessionEffect[]): void {
    this.pending.push({ request, effects });
  }

  /** The server sent an ErrorResponse while this client's request ran. */
  error(): void {
    this.failedRequest = true;
  }

  /** Requests that will never be answered (Syncs a COPY IN made the server ignore). */
  forgetRequests(n: number): void {
    this.requestsSent -= n;
  }

  /**
   * A ReadyForQuery ended a request. Returns the effects that now hold (in order), or null.
   * `status` is its transaction status byte: 'I' idle, 'T' in a transaction, 'E' failed transaction.
   */
  ready(status: number): SessionEffect[] | null {
    const request = ++this.requestsDone;
    const failed = this.failedRequest;
    this.failedRequest = false;
    let done: SessionEffect[] | null = null;
    while (this.pending.length > 0 && this.pending[0]!.request <= request) {
      const item = this.pending.shift()!;
      if (done === null) done = [];
      done.push(...item.effects);
    }
    if (status === IN_TRANSACTION) {
      if (done !== null && !failed) this.transactionEffects.push(...done);
      return null;
    }
    if (status === FAILED) {
      this.transactionFailed = true;
      return null;
    }
    // Idle: the transaction (explicit, or the implicit one of this request) is over.
    const effects = this.transactionEffects;
    this.transactionEffects = [];
    const rolledBack = this.transactionFailed || failed;
    this.transactionFailed = false;
    if (done !== null) effects.push(...done);
    if (rolledBack || effects.length === 0) return null;
    const rollback = effects.findIndex((e) => e.kind === "rollback");
    // A ROLLBACK undoes what its transaction did; what followed it (in a pipeline or one Query string) holds.
    return rollback >= 0 ? effects.slice(rollback + 1) : effects;
  }

  /** Applies effects that held: SETs and pins. Returns what the caller must also act on. */
  apply(effects: readonly SessionEffect[]): { resetAll: boolean; statementsGone: boolean } {
    let resetAll = false;
    let statementsGone = false;
    for (const e of effects) {
      switch (e.kind) {
        case "set":
          if (!followedByReports(e.name)) this.sets.set(e.name, e.sql);
          break;
        case "reset":
          this.sets.delete(e.name);
          break;
        case "reset_all":
          this.sets.clear();
          resetAll = true;
          break;
        case "pin":
          this.pin(e.reason, e.key ?? "");
          break;
        case "unpin":
          this.unpin(e.reason, e.key);
          break;
        case "unpin_all":
          this.pinKeys.delete(e.reason);
          break;
        case "deallocate_all":
          this.pinKeys.delete("sql_prepare");
          statementsGone = true;
          break;
        case "discard":
          if (e.what === "all") {
            // Everything but LOAD: a library stays loaded.
            for (const reason of [...this.pinKeys.keys()]) if (reason !== "load") this.pinKeys.delete(reason);
            this.sets.clear();
            resetAll = true;
            statementsGone = true;
          } else if (e.what === "temp") {
            this.pinKeys.delete("temp_table");
          }
          break;
        case "rollback":
          break;
      }
    }
    return { resetAll, statementsGone };
  }

  private pin(reason: PinReason, key: string): void {
    let keys = this.pinKeys.get(reason);
    if (keys === undefined) {
      keys = new Map();
      this.pinKeys.set(reason, keys);
    }
    // Named state exists once (LISTEN twice is one channel); advisory locks stack.
    keys.set(key, key === "" ? (keys.get("") ?? 0) + 1 : 1);
  }

  private unpin(reason: PinReason, key: string | undefined): void {
    const keys = this.pinKeys.get(reason);
    if (keys === undefined) return;
    const k = key ?? "";
    const n = keys.get(k);
    if (n === undefined) return;
    if (n > 1) keys.set(k, n - 1);
    else keys.delete(k);
    if (keys.size === 0) this.pinKeys.delete(reason);
  }
}

const IN_TRANSACTION = 0x54; // 'T'
const FAILED = 0x45; // 'E'

/** The first effect that would tie the client to its server (the "error" policy refuses the statement). */
export function firstPin(effects: readonly SessionEffect[]): Extract<SessionEffect, { kind: "pin" }> | undefined {
  for (const e of effects) if (e.kind === "pin") return e;
  return undefined;
}

const REFUSED_STATEMENT: Readonly<Record<PinReason, string>> = {
  listen: "LISTEN",
  advisory_lock: "a session-level advisory lock",
  temp_table: "a temporary table, view or sequence",
  cursor_with_hold: "DECLARE ... WITH HOLD",
  sql_prepare: "SQL-level PREPARE",
  load: "LOAD",
  set_config: "set_config(..., false) with arguments that are not constants",
  unrecognized_set: "a SET pgmux cannot replay on another server",
};

/**
 * SQL that fails with 0A000 naming what was refused: sent in the refused statement's place, so the error
 * arrives where the client expects that statement's answer, framed by the server like any other.
 */
export function refusalSql(reason: PinReason): string {
  const message = `${REFUSED_STATEMENT[reason]} is not supported in this transaction-pooled connection`;
  const hint =
    "It would outlive the transaction on a server other clients share. Use a session-mode pool, or set session_state = pin.";
  return `DO $pgmux$ BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = '${message}', HINT = '${hint}'; END $pgmux$`;
}

/**
 * The SQL that makes a server's own SETs those of the client about to use it: RESET of what a previous
 * client left that this one lacks, then this client's statements where the server's differ. "" if equal.
 */
export function sessionSyncQuery(client: ReadonlyMap<string, string>, server: ReadonlyMap<string, string>): string {
  let sql = "";
  for (const name of server.keys()) {
    if (!client.has(name)) sql += `RESET ${quoteIdent(name)};`;
  }
  for (const [name, statement] of client) {
    if (server.get(name) !== statement) sql += `${statement};`;
  }
  return sql;
}

function quoteIdent(name: string): string {
  // Parameter names the analyzer reports are lower case, dotted for custom ones (myapp.tenant):
  // each part is quoted so that any name reaches the server as it was set.
  return name
    .split(".")
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join(".");
}
