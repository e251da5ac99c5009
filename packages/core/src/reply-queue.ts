import { BackendMessageType } from "@pgmux/protocol";
import type { PreparedStatement } from "./prepared-statements.js";

/**
 * What the server will answer, message by message, for what has been written to it on a client's behalf.
 * A slot is one request the server replies to; it ends at the reply that completes it. Most slots only
 * keep the order; the few pgmux itself caused say what to do with their reply (swallow it, or emit one
 * the server will never send).
 */
export const Slot = {
  /** Resolved to nothing (a statement the server already had): popped as soon as it reaches the head. */
  Skip: 0,
  /** The client's Parse, forwarded under the statement's server name. */
  Parse: 1,
  /** A Parse pgmux injected before a Bind or Describe: its ParseComplete is not the client's. */
  SwallowParse: 2,
  /** The client's Parse of a statement the server already holds: pgmux answers ParseComplete itself. */
  EmitParseComplete: 3,
  Bind: 4,
  Describe: 5,
  Execute: 6,
  Close: 7,
  /** A Close pgmux sent to evict a statement from the server: its CloseComplete is not the client's. */
  SwallowClose: 8,
  Sync: 9,
  /** Query or FunctionCall: everything up to its ReadyForQuery. */
  Simple: 10,
  /** The ReadyForQuery of an exchange pgmux sends again (see retryStaleStatement): not the client's. */
  SwallowSync: 13,
  /** The client's Parse while no server is linked: becomes Parse or EmitParseComplete once one is. */
  PendingParse: 11,
  /** Before a Bind/Describe while no server is linked: becomes SwallowParse or Skip once one is. */
  PendingEnsure: 12,
} as const;
export type Slot = (typeof Slot)[keyof typeof Slot];

const B = BackendMessageType;

/**
 * For each slot kind, a 256-entry table: 1 at the type bytes that complete it. ErrorResponse completes
 * every extended-protocol slot (the server then skips to the next Sync) but not a simple query's.
 */
const ENDS: Uint8Array[] = [];
function ends(...types: number[]): Uint8Array {
  const t = new Uint8Array(256);
  for (const x of types) t[x] = 1;
  return t;
}
const NEVER = ends();
for (const kind of Object.values(Slot)) ENDS[kind] = NEVER;
ENDS[Slot.Parse] = ENDS[Slot.SwallowParse] = ends(B.ParseComplete, B.ErrorResponse);
ENDS[Slot.Bind] = ends(B.BindComplete, B.ErrorResponse);
ENDS[Slot.Describe] = ends(B.RowDescription, B.NoData, B.ErrorResponse);
ENDS[Slot.Execute] = ends(B.CommandComplete, B.EmptyQueryResponse, B.PortalSuspended, B.ErrorResponse);
ENDS[Slot.Close] = ENDS[Slot.SwallowClose] = ends(B.CloseComplete, B.ErrorResponse);
ENDS[Slot.Sync] = ENDS[Slot.Simple] = ENDS[Slot.SwallowSync] = ends(B.ReadyForQuery);

/** True when a message of `type` completes a slot of `kind`. */
export function completes(kind: number, type: number): boolean {
  return ENDS[kind]![type] === 1;
}

/**
 * A ring of slots with a statement reference per slot, addressed by ever-increasing sequence numbers so
 * that a slot pushed while no server was linked can be resolved in place later. Grows by doubling; never
 * shrinks (its size follows the longest pipeline the client sent).
 */
export class ReplyQueue {
  private kinds = new Uint8Array(16);
  private refs: (PreparedStatement | null)[] = new Array<PreparedStatement | null>(16).fill(null);
  private mask = 15;
  /** Sequence number of the head slot. */
  head = 0;
  /** Sequence number the next pushed slot gets. */
  tail = 0;
  /**
   * The server reported an error inside an extended-protocol exchange: it ignores every message up to the
   * next Sync, so nothing pushed before that Sync will be answered.
   */
  skipping = false;

  get size(): number {
    return this.tail - this.head;
  }

  get headKind(): number {
    return this.kinds[this.head & this.mask]!;
  }

  get headRef(): PreparedStatement | null {
    return this.refs[this.head & this.mask]!;
  }

  kindAt(seq: number): number {
    return this.kinds[seq & this.mask]!;
  }

  refAt(seq: number): PreparedStatement | null {
    return this.refs[seq & this.mask]!;
  }

  /** Appends a slot and returns its sequence number. */
  push(kind: Slot, ref: PreparedStatement | null = null): number {
    if (this.tail - this.head > this.mask) this.grow();
    const i = this.tail & this.mask;
    this.kinds[i] = kind;
    this.refs[i] = ref;
    return this.tail++;
  }

  /** Puts a slot in front of every other (pgmux's own messages written before the client's). */
  unshift(kind: Slot, ref: PreparedStatement | null = null): void {
    if (this.tail - this.head > this.mask) this.grow();
    const i = --this.head & this.mask;
    this.kinds[i] = kind;
    this.refs[i] = ref;
  }

  /** Changes a slot's kind in place (a pending slot resolved once a server is linked). */
  set(seq: number, kind: Slot): void {
    this.kinds[seq & this.mask] = kind;
  }

  shift(): void {
    this.refs[this.head & this.mask] = null;
    this.head++;
  }

  /** Removes the slots after the head that match `kind` (the Syncs a COPY IN makes the server ignore). */
  dropAfterHead(kind: Slot): number {
    let dropped = 0;
    let write = this.head + 1;
    for (let read = this.head + 1; read < this.tail; read++) {
      const k = this.kinds[read & this.mask]!;
      if (k === kind) {
        dropped++;
        continue;
      }
      this.kinds[write & this.mask] = k;
      this.refs[write & this.mask] = this.refs[read & this.mask]!;
      write++;
    }
    for (let s = write; s < this.tail; s++) this.refs[s & this.mask] = null;
    this.tail = write;
    return dropped;
  }

  clear(): void {
    for (let s = this.head; s < this.tail; s++) this.refs[s & this.mask] = null;
    this.head = this.tail = 0;
    this.skipping = false;
  }

  private grow(): void {
    const size = this.mask + 1;
    const kinds = new Uint8Array(size * 2);
    const refs = new Array<PreparedStatement | null>(size * 2).fill(null);
    for (let s = this.head; s < this.tail; s++) {
      kinds[s & (size * 2 - 1)] = this.kinds[s & this.mask]!;
      refs[s & (size * 2 - 1)] = this.refs[s & this.mask]!;
    }
    this.kinds = kinds;
    this.refs = refs;
    this.mask = size * 2 - 1;
  }
}
