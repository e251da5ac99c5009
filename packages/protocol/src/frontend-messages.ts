/**
 * Frontend messages (sent by a client, or by pgmux to a server) of protocol 3.0 and 3.2, as the "Message
 * Formats" section of the protocol docs defines them, and their encoders. Decoders are in
 * decode-frontend-message.ts.
 *
 * Every encoder returns a new Buffer the caller owns. The prebuilt constant messages are shared: write them
 * to sockets, never into them.
 */
import { BufferWriter } from "./buffer-writer.js";
import { MAX_CANCEL_KEY_BYTES, RequestCode } from "./constants.js";
import { nullableBytesSize, writeInt16s, writeNullableBytesArray, writeOids } from "./wire-fields.js";

/** Type bytes of the typed frontend messages. 'p' is shared by four messages; context tells them apart. */
export const FrontendMessageType = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  GSSResponse: 0x70, // 'p'
  Parse: 0x50, // 'P'
  PasswordMessage: 0x70, // 'p'
  Query: 0x51, // 'Q'
  SASLInitialResponse: 0x70, // 'p'
  SASLResponse: 0x70, // 'p'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

/** Which of a statement ('S') or a portal ('P') a Close or Describe names. */
export type StatementOrPortal = "S" | "P";

export interface Bind {
  type: "Bind";
  /** Destination portal; "" is the unnamed portal. */
  portal: string;
  /** Source prepared statement; "" is the unnamed statement. */
  statement: string;
  /** None (all text), one (applies to all) or one per parameter: 0 text, 1 binary. */
  parameterFormats: number[];
  /** Parameter values; null is SQL NULL. */
  parameters: (Buffer | null)[];
  resultFormats: number[];
}

/**
 * Untyped. The secret key is 4 bytes in protocol 3.0 and 4 to 256 bytes in 3.2: its length is whatever
 * the message length leaves.
 */
export interface CancelRequest {
  type: "CancelRequest";
  processId: number;
  secretKey: Buffer;
}

export interface Close {
  type: "Close";
  kind: StatementOrPortal;
  name: string;
}

/** F & B: the same message in both directions, so it is a member of BackendMessage too. */
export interface CopyData {
  type: "CopyData";
  data: Buffer;
}

/** F & B, like CopyData. */
export interface CopyDone {
  type: "CopyDone";
}

export interface CopyFail {
  type: "CopyFail";
  /** The error message to report as the cause of failure. */
  message: string;
}

export interface Describe {
  type: "Describe";
  kind: StatementOrPortal;
  name: string;
}

export interface Execute {
  type: "Execute";
  portal: string;
  /** Zero means no limit. */
  maxRows: number;
}

export interface Flush {
  type: "Flush";
}

export interface FunctionCall {
  type: "FunctionCall";
  functionOid: number;
  argumentFormats: number[];
  arguments: (Buffer | null)[];
  resultFormat: number;
}

/** Untyped: asks for GSSAPI encryption before the StartupMessage. */
export interface GSSENCRequest {
  type: "GSSENCRequest";
}

export interface GSSResponse {
  type: "GSSResponse";
  data: Buffer;
}

export interface Parse {
  type: "Parse";
  /** Destination prepared statement; "" is the unnamed statement. */
  statement: string;
  query: string;
  /** Parameter type OIDs; 0 leaves a type unspecified. */
  parameterTypes: number[];
}

export interface PasswordMessage {
  type: "PasswordMessage";
  /** Cleartext, or "md5" + hex digest, as the authentication method asked. */
  password: string;
}

export interface Query {
  type: "Query";
  query: string;
}

export interface SASLInitialResponse {
  type: "SASLInitialResponse";
  mechanism: string;
  /** The mechanism's initial response; null when it has none (sent as length -1). */
  data: Buffer | null;
}

export interface SASLResponse {
  type: "SASLResponse";
  data: Buffer;
}

/** Untyped: asks for TLS before the StartupMessage. */
export interface SSLRequest {
  type: "SSLRequest";
}

/**
 * Untyped. `protocolVersion` is the full code, (major << 16) | minor; any 3.x decodes, so the pooler can
 * answer a newer minor version with NegotiateProtocolVersion. `parameters` keep wire order and any repeats.
 */
export interface StartupMessage {
  type: "StartupMessage";
  protocolVersion: number;
  parameters: [name: string, value: string][];
}

export interface Sync {
  type: "Sync";
}

export interface Terminate {
  type: "Terminate";
}

/** The untyped messages a connection may open with, told apart by their code. */
export type StartupFamilyMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

export type TypedFrontendMessage =
  | Bind
  | Close
  | CopyData
  | CopyDone
  | CopyFail
  | Describe
  | Execute
  | Flush
  | FunctionCall
  | GSSResponse
  | Parse
  | PasswordMessage
  | Query
  | SASLInitialResponse
  | SASLResponse
  | Sync
  | Terminate;

export type FrontendMessage = TypedFrontendMessage | StartupFamilyMessage;

/** A message's fields without its tag: what the encoders take (a whole message object fits too). */
export type MessageFields<M extends { type: string }> = Omit<M, "type">;

const T = FrontendMessageType;

function emptyMessage(type: number): Buffer {
  return new BufferWriter(5).begin(type).end().finish();
}

function checkCancelKey(key: Uint8Array): void {
  if (key.length < 4 || key.length > MAX_CANCEL_KEY_BYTES) {
    throw new RangeError(`a cancel key is 4 to ${MAX_CANCEL_KEY_BYTES} bytes, not ${key.length}`);
  }
}

export function encodeBind(m: MessageFields<Bind>): Buffer {
  const size = 64 + m.portal.length * 3 + m.statement.length * 3 + nullableBytesSize(m.parameters);
  const w = new BufferWriter(size).begin(T.Bind).cstring(m.portal).cstring(m.statement);
  writeInt16s(w, m.parameterFormats, "Bind parameter format");
  writeNullableBytesArray(w, m.parameters, "Bind parameter");
  writeInt16s(w, m.resultFormats, "Bind result format");
  return w.end().finish();
}

export function encodeCancelRequest(m: MessageFields<CancelRequest>): Buffer {
  checkCancelKey(m.secretKey);
  return new BufferWriter(12 + m.secretKey.length)
    .begin(null)
    .int32(RequestCode.CancelRequest)
    .int32(m.processId)
    .bytes(m.secretKey)
    .end()
    .finish();
}

function encodeTargeted(type: number, kind: StatementOrPortal, name: string): Buffer {
  return new BufferWriter(8 + name.length * 3).begin(type).byte(kind.charCodeAt(0)).cstring(name).end().finish();
}

export function encodeClose(m: MessageFields<Close>): Buffer {
  return encodeTargeted(T.Close, m.kind, m.name);
}

export function encodeCopyData(m: MessageFields<CopyData>): Buffer {
  return new BufferWriter(5 + m.data.length).begin(T.CopyData).bytes(m.data).end().finish();
}

export function encodeCopyDone(): Buffer {
  return emptyMessage(T.CopyDone);
}

export function encodeCopyFail(m: MessageFields<CopyFail>): Buffer {
  return new BufferWriter().begin(T.CopyFail).cstring(m.message).end().finish();
}

export function encodeDescribe(m: MessageFields<Describe>): Buffer {
  return encodeTargeted(T.Describe, m.kind, m.name);
}

export function encodeExecute(m: MessageFields<Execute>): Buffer {
  return new BufferWriter().begin(T.Execute).cstring(m.portal).int32(m.maxRows).end().finish();
}

export function encodeFlush(): Buffer {
  return emptyMessage(T.Flush);
}

export function encodeFunctionCall(m: MessageFields<FunctionCall>): Buffer {
  const w = new BufferWriter(64 + nullableBytesSize(m.arguments)).begin(T.FunctionCall).uint32(m.functionOid);
  writeInt16s(w, m.argumentFormats, "FunctionCall argument format");
  writeNullableBytesArray(w, m.arguments, "FunctionCall argument");
  return w.int16(m.resultFormat).end().finish();
}

export function encodeGSSENCRequest(): Buffer {
  return new BufferWriter(8).begin(null).int32(RequestCode.GSSENCRequest).end().finish();
}

export function encodeGSSResponse(m: MessageFields<GSSResponse>): Buffer {
  return new BufferWriter(5 + m.data.length).begin(T.GSSResponse).bytes(m.data).end().finish();
}

export function encodeParse(m: MessageFields<Parse>): Buffer {
  const w = new BufferWriter(16 + m.statement.length * 3 + m.query.length * 3 + m.parameterTypes.length * 4)
    .begin(T.Parse)
    .cstring(m.statement)
    .cstring(m.query);
  writeOids(w, m.parameterTypes, "Parse parameter type");
  return w.end().finish();
}

export function encodePasswordMessage(m: MessageFields<PasswordMessage>): Buffer {
  return new BufferWriter().begin(T.PasswordMessage).cstring(m.password).end().finish();
}

export function encodeQuery(m: MessageFields<Query>): Buffer {
  return new BufferWriter(6 + m.query.length * 3).begin(T.Query).cstring(m.query).end().finish();
}

export function encodeSASLInitialResponse(m: MessageFields<SASLInitialResponse>): Buffer {
  const w = new BufferWriter(64 + (m.data?.length ?? 0)).begin(T.SASLInitialResponse).cstring(m.mechanism);
  if (m.data === null) w.int32(-1);
  else w.int32(m.data.length).bytes(m.data);
  return w.end().finish();
}

export function encodeSASLResponse(m: MessageFields<SASLResponse>): Buffer {
  return new BufferWriter(5 + m.data.length).begin(T.SASLResponse).bytes(m.data).end().finish();
}

export function encodeSSLRequest(): Buffer {
  return new BufferWriter(8).begin(null).int32(RequestCode.SSLRequest).end().finish();
}

export function encodeStartupMessage(m: MessageFields<StartupMessage>): Buffer {
  const w = new BufferWriter().begin(null).int32(m.protocolVersion);
  for (const [name, value] of m.parameters) {
    // An empty name would read back as the list's terminator.
    if (name === "") throw new RangeError("a StartupMessage parameter name cannot be empty");
    w.cstring(name).cstring(value);
  }
  return w.byte(0).end().finish();
}

export function encodeSync(): Buffer {
  return emptyMessage(T.Sync);
}

export function encodeTerminate(): Buffer {
  return emptyMessage(T.Terminate);
}

export function encodeFrontendMessage(m: FrontendMessage): Buffer {
  switch (m.type) {
    case "Bind":
      return encodeBind(m);
    case "CancelRequest":
      return encodeCancelRequest(m);
    case "Close":
      return encodeClose(m);
    case "CopyData":
      return encodeCopyData(m);
    case "CopyDone":
      return encodeCopyDone();
    case "CopyFail":
      return encodeCopyFail(m);
    case "Describe":
      return encodeDescribe(m);
    case "Execute":
      return encodeExecute(m);
    case "Flush":
      return encodeFlush();
    case "FunctionCall":
      return encodeFunctionCall(m);
    case "GSSENCRequest":
      return encodeGSSENCRequest();
    case "GSSResponse":
      return encodeGSSResponse(m);
    case "Parse":
      return encodeParse(m);
    case "PasswordMessage":
      return encodePasswordMessage(m);
    case "Query":
      return encodeQuery(m);
    case "SASLInitialResponse":
      return encodeSASLInitialResponse(m);
    case "SASLResponse":
      return encodeSASLResponse(m);
    case "SSLRequest":
      return encodeSSLRequest();
    case "StartupMessage":
      return encodeStartupMessage(m);
    case "Sync":
      return encodeSync();
    case "Terminate":
      return encodeTerminate();
  }
}

/** Frontend messages without fields, built once: pgmux sends these to servers on every exchange. */
export const PrebuiltFrontendMessage = {
  Sync: encodeSync(),
  Flush: encodeFlush(),
  Terminate: encodeTerminate(),
  CopyDone: encodeCopyDone(),
} as const;
