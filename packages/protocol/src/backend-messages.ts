/**
 * Backend messages (sent by a server, or by pgmux to a client) of protocol 3.0 and 3.2, as the "Message
 * Formats" section of the protocol docs defines them, and their encoders. Decoders are in
 * decode-backend-message.ts. CopyData and CopyDone go both ways and are defined in frontend-messages.ts.
 *
 * Every encoder returns a new Buffer the caller owns. The prebuilt constant messages are shared: write them
 * to sockets, never into them.
 */
import { BufferWriter } from "./buffer-writer.js";
import { MAX_CANCEL_KEY_BYTES, TransactionStatus } from "./constants.js";
import type { ErrorFields } from "./error-fields.js";
import {
  type CopyData,
  type CopyDone,
  encodeCopyData,
  encodeCopyDone,
  type MessageFields,
  PrebuiltFrontendMessage,
} from "./frontend-messages.js";
import { nullableBytesSize, writeCount16, writeInt16s, writeNullableBytesArray, writeOids } from "./wire-fields.js";

/** Type bytes of the backend messages. */
export const BackendMessageType = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

/** The Int32 that follows 'R' and says which Authentication message it is. */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

export interface AuthenticationOk {
  type: "AuthenticationOk";
}

export interface AuthenticationKerberosV5 {
  type: "AuthenticationKerberosV5";
}

export interface AuthenticationCleartextPassword {
  type: "AuthenticationCleartextPassword";
}

export interface AuthenticationMD5Password {
  type: "AuthenticationMD5Password";
  /** 4 bytes. */
  salt: Buffer;
}

export interface AuthenticationGSS {
  type: "AuthenticationGSS";
}

export interface AuthenticationGSSContinue {
  type: "AuthenticationGSSContinue";
  data: Buffer;
}

export interface AuthenticationSSPI {
  type: "AuthenticationSSPI";
}

export interface AuthenticationSASL {
  type: "AuthenticationSASL";
  /** Mechanism names in the server's order of preference; none is empty (an empty one ends the list). */
  mechanisms: string[];
}

export interface AuthenticationSASLContinue {
  type: "AuthenticationSASLContinue";
  data: Buffer;
}

export interface AuthenticationSASLFinal {
  type: "AuthenticationSASLFinal";
  data: Buffer;
}

/** The secret key is 4 bytes in protocol 3.0 and 4 to 256 bytes in 3.2 (PostgreSQL 18 sends 32). */
export interface BackendKeyData {
  type: "BackendKeyData";
  processId: number;
  secretKey: Buffer;
}

export interface BindComplete {
  type: "BindComplete";
}

export interface CloseComplete {
  type: "CloseComplete";
}

export interface CommandComplete {
  type: "CommandComplete";
  /** The command tag, such as "SELECT 3" or "INSERT 0 1". */
  tag: string;
}

/** CopyInResponse, CopyOutResponse and CopyBothResponse share this shape. */
interface CopyResponseFields {
  /** Overall format: 0 text, 1 binary. */
  format: number;
  /** Per column; all 0 when `format` is 0. */
  columnFormats: number[];
}

export interface CopyInResponse extends CopyResponseFields {
  type: "CopyInResponse";
}

export interface CopyOutResponse extends CopyResponseFields {
  type: "CopyOutResponse";
}

export interface CopyBothResponse extends CopyResponseFields {
  type: "CopyBothResponse";
}

export interface DataRow {
  type: "DataRow";
  /** Column values; null is SQL NULL. */
  values: (Buffer | null)[];
}

export interface EmptyQueryResponse {
  type: "EmptyQueryResponse";
}

export interface ErrorResponse {
  type: "ErrorResponse";
  fields: ErrorFields;
}

export interface FunctionCallResponse {
  type: "FunctionCallResponse";
  /** null when the function returned NULL. */
  result: Buffer | null;
}

export interface NegotiateProtocolVersion {
  type: "NegotiateProtocolVersion";
  /**
   * The newest version the server supports for the major version asked: the full code, (3 << 16) | minor,
   * which is what servers send (older docs call it the minor version).
   */
  newestProtocolVersion: number;
  /** `_pq_.` options of the StartupMessage the server did not recognize. */
  unrecognizedOptions: string[];
}

export interface NoData {
  type: "NoData";
}

export interface NoticeResponse {
  type: "NoticeResponse";
  fields: ErrorFields;
}

export interface NotificationResponse {
  type: "NotificationResponse";
  /** The notifying backend's process ID. */
  processId: number;
  channel: string;
  payload: string;
}

export interface ParameterDescription {
  type: "ParameterDescription";
  parameterTypes: number[];
}

export interface ParameterStatus {
  type: "ParameterStatus";
  name: string;
  value: string;
}

export interface ParseComplete {
  type: "ParseComplete";
}

export interface PortalSuspended {
  type: "PortalSuspended";
}

export interface ReadyForQuery {
  type: "ReadyForQuery";
  status: TransactionStatus;
}

/** One field (column) of a RowDescription. */
export interface FieldDescription {
  name: string;
  /** OID of the table the column belongs to, or 0. */
  tableOid: number;
  /** Attribute number of the column in that table, or 0. */
  columnNumber: number;
  typeOid: number;
  /** pg_type.typlen: negative for variable-width types. */
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary; 0 when returned by a Describe of a statement, whose format is not yet known. */
  format: number;
}

export interface RowDescription {
  type: "RowDescription";
  fields: FieldDescription[];
}

export type AuthenticationMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

export type BackendMessage =
  | AuthenticationMessage
  | BackendKeyData
  | BindComplete
  | CloseComplete
  | CommandComplete
  | CopyData
  | CopyDone
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | DataRow
  | EmptyQueryResponse
  | ErrorResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion
  | NoData
  | NoticeResponse
  | NotificationResponse
  | ParameterDescription
  | ParameterStatus
  | ParseComplete
  | PortalSuspended
  | ReadyForQuery
  | RowDescription;

const T = BackendMessageType;
const A = AuthenticationCode;

function emptyMessage(type: number): Buffer {
  return new BufferWriter(5).begin(type).end().finish();
}

function authentication(code: number, data?: Uint8Array): Buffer {
  const w = new BufferWriter(9 + (data?.length ?? 0)).begin(T.Authentication).int32(code);
  if (data !== undefined) w.bytes(data);
  return w.end().finish();
}

export function encodeAuthenticationOk(): Buffer {
  return authentication(A.Ok);
}

export function encodeAuthenticationKerberosV5(): Buffer {
  return authentication(A.KerberosV5);
}

export function encodeAuthenticationCleartextPassword(): Buffer {
  return authentication(A.CleartextPassword);
}

export function encodeAuthenticationMD5Password(m: MessageFields<AuthenticationMD5Password>): Buffer {
  if (m.salt.length !== 4) throw new RangeError(`an MD5 salt is 4 bytes, not ${m.salt.length}`);
  return authentication(A.MD5Password, m.salt);
}

export function encodeAuthenticationGSS(): Buffer {
  return authentication(A.GSS);
}

export function encodeAuthenticationGSSContinue(m: MessageFields<AuthenticationGSSContinue>): Buffer {
  return authentication(A.GSSContinue, m.data);
}

export function encodeAuthenticationSSPI(): Buffer {
  return authentication(A.SSPI);
}

export function encodeAuthenticationSASL(m: MessageFields<AuthenticationSASL>): Buffer {
  const w = new BufferWriter(64).begin(T.Authentication).int32(A.SASL);
  for (const mechanism of m.mechanisms) {
    if (mechanism === "") throw new RangeError("a SASL mechanism name cannot be empty");
    w.cstring(mechanism);
  }
  return w.byte(0).end().finish();
}

export function encodeAuthenticationSASLContinue(m: MessageFields<AuthenticationSASLContinue>): Buffer {
  return authentication(A.SASLContinue, m.data);
}

export function encodeAuthenticationSASLFinal(m: MessageFields<AuthenticationSASLFinal>): Buffer {
  return authentication(A.SASLFinal, m.data);
}

export function encodeBackendKeyData(m: MessageFields<BackendKeyData>): Buffer {
  const n = m.secretKey.length;
  if (n < 4 || n > MAX_CANCEL_KEY_BYTES) {
    throw new RangeError(`a cancel key is 4 to ${MAX_CANCEL_KEY_BYTES} bytes, not ${n}`);
  }
  return new BufferWriter(9 + n).begin(T.BackendKeyData).int32(m.processId).bytes(m.secretKey).end().finish();
}

export function encodeBindComplete(): Buffer {
  return emptyMessage(T.BindComplete);
}

export function encodeCloseComplete(): Buffer {
  return emptyMessage(T.CloseComplete);
}

export function encodeCommandComplete(m: MessageFields<CommandComplete>): Buffer {
  return new BufferWriter(6 + m.tag.length * 3).begin(T.CommandComplete).cstring(m.tag).end().finish();
}

function copyResponse(type: number, m: CopyResponseFields): Buffer {
  if (!(Number.isInteger(m.format) && m.format >= 0 && m.format <= 0xff)) {
    throw new RangeError(`a COPY format is one byte, not ${m.format}`);
  }
  const w = new BufferWriter(8 + m.columnFormats.length * 2).begin(type).byte(m.format);
  writeInt16s(w, m.columnFormats, "COPY column format");
  return w.end().finish();
}

export function encodeCopyInResponse(m: MessageFields<CopyInResponse>): Buffer {
  return copyResponse(T.CopyInResponse, m);
}

export function encodeCopyOutResponse(m: MessageFields<CopyOutResponse>): Buffer {
  return copyResponse(T.CopyOutResponse, m);
}

export function encodeCopyBothResponse(m: MessageFields<CopyBothResponse>): Buffer {
  return copyResponse(T.CopyBothResponse, m);
}

export function encodeDataRow(m: MessageFields<DataRow>): Buffer {
  const w = new BufferWriter(7 + nullableBytesSize(m.values)).begin(T.DataRow);
  writeNullableBytesArray(w, m.values, "DataRow column");
  return w.end().finish();
}

export function encodeEmptyQueryResponse(): Buffer {
  return emptyMessage(T.EmptyQueryResponse);
}

function fieldsMessage(type: number, fields: ReadonlyMap<string, string>): Buffer {
  const w = new BufferWriter().begin(type);
  for (const [code, value] of fields) {
    const c = code.charCodeAt(0);
    // A field code is one non-zero byte; zero ends the list.
    if (code.length !== 1 || c === 0 || c > 0xff) throw new RangeError(`not a field code: ${JSON.stringify(code)}`);
    w.byte(c).cstring(value);
  }
  return w.byte(0).end().finish();
}

export function encodeErrorResponse(m: MessageFields<ErrorResponse>): Buffer {
  return fieldsMessage(T.ErrorResponse, m.fields);
}

export function encodeFunctionCallResponse(m: MessageFields<FunctionCallResponse>): Buffer {
  const w = new BufferWriter(9 + (m.result?.length ?? 0)).begin(T.FunctionCallResponse);
  if (m.result === null) w.int32(-1);
  else w.int32(m.result.length).bytes(m.result);
  return w.end().finish();
}

export function encodeNegotiateProtocolVersion(m: MessageFields<NegotiateProtocolVersion>): Buffer {
  const w = new BufferWriter()
    .begin(T.NegotiateProtocolVersion)
    .int32(m.newestProtocolVersion)
    .int32(m.unrecognizedOptions.length);
  for (const option of m.unrecognizedOptions) w.cstring(option);
  return w.end().finish();
}

export function encodeNoData(): Buffer {
  return emptyMessage(T.NoData);
}

export function encodeNoticeResponse(m: MessageFields<NoticeResponse>): Buffer {
  return fieldsMessage(T.NoticeResponse, m.fields);
}

export function encodeNotificationResponse(m: MessageFields<NotificationResponse>): Buffer {
  return new BufferWriter()
    .begin(T.NotificationResponse)
    .int32(m.processId)
    .cstring(m.channel)
    .cstring(m.payload)
    .end()
    .finish();
}

export function encodeParameterDescription(m: MessageFields<ParameterDescription>): Buffer {
  const w = new BufferWriter(7 + m.parameterTypes.length * 4).begin(T.ParameterDescription);
  writeOids(w, m.parameterTypes, "ParameterDescription type");
  return w.end().finish();
}

export function encodeParameterStatus(m: MessageFields<ParameterStatus>): Buffer {
  return new BufferWriter().begin(T.ParameterStatus).cstring(m.name).cstring(m.value).end().finish();
}

export function encodeParseComplete(): Buffer {
  return emptyMessage(T.ParseComplete);
}

export function encodePortalSuspended(): Buffer {
  return emptyMessage(T.PortalSuspended);
}

export function encodeReadyForQuery(m: MessageFields<ReadyForQuery>): Buffer {
  const s = m.status;
  if (s !== TransactionStatus.Idle && s !== TransactionStatus.InTransaction && s !== TransactionStatus.Failed) {
    throw new RangeError(`not a transaction status: ${s}`);
  }
  return new BufferWriter(6).begin(T.ReadyForQuery).byte(s).end().finish();
}

export function encodeRowDescription(m: MessageFields<RowDescription>): Buffer {
  const w = new BufferWriter(7 + m.fields.length * 40).begin(T.RowDescription);
  writeCount16(w, m.fields.length, "RowDescription field");
  for (const f of m.fields) {
    w.cstring(f.name)
      .uint32(f.tableOid)
      .int16(f.columnNumber)
      .uint32(f.typeOid)
      .int16(f.typeSize)
      .int32(f.typeModifier)
      .int16(f.format);
  }
  return w.end().finish();
}

export function encodeBackendMessage(m: BackendMessage): Buffer {
  switch (m.type) {
    case "AuthenticationOk":
      return encodeAuthenticationOk();
    case "AuthenticationKerberosV5":
      return encodeAuthenticationKerberosV5();
    case "AuthenticationCleartextPassword":
      return encodeAuthenticationCleartextPassword();
    case "AuthenticationMD5Password":
      return encodeAuthenticationMD5Password(m);
    case "AuthenticationGSS":
      return encodeAuthenticationGSS();
    case "AuthenticationGSSContinue":
      return encodeAuthenticationGSSContinue(m);
    case "AuthenticationSSPI":
      return encodeAuthenticationSSPI();
    case "AuthenticationSASL":
      return encodeAuthenticationSASL(m);
    case "AuthenticationSASLContinue":
      return encodeAuthenticationSASLContinue(m);
    case "AuthenticationSASLFinal":
      return encodeAuthenticationSASLFinal(m);
    case "BackendKeyData":
      return encodeBackendKeyData(m);
    case "BindComplete":
      return encodeBindComplete();
    case "CloseComplete":
      return encodeCloseComplete();
    case "CommandComplete":
      return encodeCommandComplete(m);
    case "CopyData":
      return encodeCopyData(m);
    case "CopyDone":
      return encodeCopyDone();
    case "CopyInResponse":
      return encodeCopyInResponse(m);
    case "CopyOutResponse":
      return encodeCopyOutResponse(m);
    case "CopyBothResponse":
      return encodeCopyBothResponse(m);
    case "DataRow":
      return encodeDataRow(m);
    case "EmptyQueryResponse":
      return encodeEmptyQueryResponse();
    case "ErrorResponse":
      return encodeErrorResponse(m);
    case "FunctionCallResponse":
      return encodeFunctionCallResponse(m);
    case "NegotiateProtocolVersion":
      return encodeNegotiateProtocolVersion(m);
    case "NoData":
      return encodeNoData();
    case "NoticeResponse":
      return encodeNoticeResponse(m);
    case "NotificationResponse":
      return encodeNotificationResponse(m);
    case "ParameterDescription":
      return encodeParameterDescription(m);
    case "ParameterStatus":
      return encodeParameterStatus(m);
    case "ParseComplete":
      return encodeParseComplete();
    case "PortalSuspended":
      return encodePortalSuspended();
    case "ReadyForQuery":
      return encodeReadyForQuery(m);
    case "RowDescription":
      return encodeRowDescription(m);
  }
}

/** Backend messages without fields (or with one constant field), built once: pgmux sends these to clients. */
export const PrebuiltBackendMessage = {
  AuthenticationOk: encodeAuthenticationOk(),
  BindComplete: encodeBindComplete(),
  CloseComplete: encodeCloseComplete(),
  CopyDone: PrebuiltFrontendMessage.CopyDone,
  EmptyQueryResponse: encodeEmptyQueryResponse(),
  NoData: encodeNoData(),
  ParseComplete: encodeParseComplete(),
  PortalSuspended: encodePortalSuspended(),
  ReadyForQueryIdle: encodeReadyForQuery({ status: TransactionStatus.Idle }),
  ReadyForQueryInTransaction: encodeReadyForQuery({ status: TransactionStatus.InTransaction }),
  ReadyForQueryFailed: encodeReadyForQuery({ status: TransactionStatus.Failed }),
} as const;

/** The prebuilt ReadyForQuery for a status (shared: do not write into it). */
export function readyForQueryBytes(status: TransactionStatus): Buffer {
  switch (status) {
    case TransactionStatus.Idle:
      return PrebuiltBackendMessage.ReadyForQueryIdle;
    case TransactionStatus.InTransaction:
      return PrebuiltBackendMessage.ReadyForQueryInTransaction;
    case TransactionStatus.Failed:
      return PrebuiltBackendMessage.ReadyForQueryFailed;
  }
}
