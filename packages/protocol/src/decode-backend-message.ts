/**
 * Decoder of backend messages. It takes a frame as the frame reader delivers it: the type byte, and the
 * body `buf[start, end)` that follows the length field. It consumes the body exactly; anything malformed (a
 * short or overlong body, a count the body cannot hold, an unknown type or authentication code) raises
 * ProtocolError and nothing else.
 *
 * Ownership: Buffer fields (DataRow values, CopyData, SASL data, the cancel key, the MD5 salt) are views
 * into `buf`, not copies. They are valid only while `buf` is; copy what you keep past the current message.
 */
import {
  AuthenticationCode as A,
  type AuthenticationMessage,
  type BackendMessage,
  type FieldDescription,
  BackendMessageType as T,
} from "./backend-messages.js";
import { BufferReader } from "./buffer-reader.js";
import { MAX_CANCEL_KEY_BYTES, TransactionStatus } from "./constants.js";
import type { ErrorFields } from "./error-fields.js";
import { ProtocolError } from "./protocol-error.js";
import {
  checkFrameBounds,
  readCount16,
  readCount32,
  readInt16s,
  readNullableBytes,
  readNullableBytesArray,
  readOids,
  typeByteLabel,
} from "./wire-fields.js";

/** Smallest RowDescription field: an empty name's NUL, then 18 bytes of fixed fields. */
const MIN_FIELD_DESCRIPTION_BYTES = 19;

/** Field codes as one-character strings, made once rather than per field. */
const FIELD_CODES: readonly string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

export function decodeBackendMessage(type: number, buf: Buffer, start: number, end: number): BackendMessage {
  checkFrameBounds(buf, start, end);
  const r = new BufferReader(buf, start, end);
  let m: BackendMessage;
  switch (type) {
    case T.Authentication:
      m = decodeAuthentication(r);
      break;
    case T.BackendKeyData: {
      const processId = r.int32("BackendKeyData process ID");
      const secretKey = r.rest();
      if (secretKey.length < 4 || secretKey.length > MAX_CANCEL_KEY_BYTES) {
        throw new ProtocolError(
          `BackendKeyData secret key is ${secretKey.length} bytes, not 4 to ${MAX_CANCEL_KEY_BYTES}`,
        );
      }
      m = { type: "BackendKeyData", processId, secretKey };
      break;
    }
    case T.BindComplete:
      m = { type: "BindComplete" };
      break;
    case T.CloseComplete:
      m = { type: "CloseComplete" };
      break;
    case T.CommandComplete:
      m = { type: "CommandComplete", tag: r.cstring("CommandComplete tag") };
      break;
    case T.CopyData:
      m = { type: "CopyData", data: r.rest() };
      break;
    case T.CopyDone:
      m = { type: "CopyDone" };
      break;
    case T.CopyInResponse: {
      const format = r.byte("CopyInResponse format");
      m = { type: "CopyInResponse", format, columnFormats: readInt16s(r, "CopyInResponse column format") };
      break;
    }
    case T.CopyOutResponse: {
      const format = r.byte("CopyOutResponse format");
      m = { type: "CopyOutResponse", format, columnFormats: readInt16s(r, "CopyOutResponse column format") };
      break;
    }
    case T.CopyBothResponse: {
      const format = r.byte("CopyBothResponse format");
      m = { type: "CopyBothResponse", format, columnFormats: readInt16s(r, "CopyBothResponse column format") };
      break;
    }
    case T.DataRow:
      m = { type: "DataRow", values: readNullableBytesArray(r, "DataRow column") };
      break;
    case T.EmptyQueryResponse:
      m = { type: "EmptyQueryResponse" };
      break;
    case T.ErrorResponse:
      m = { type: "ErrorResponse", fields: readFields(r, "ErrorResponse") };
      break;
    case T.FunctionCallResponse:
      m = { type: "FunctionCallResponse", result: readNullableBytes(r, "FunctionCallResponse result") };
      break;
    case T.NegotiateProtocolVersion: {
      const newestProtocolVersion = r.int32("NegotiateProtocolVersion version");
      const n = readCount32(r, 1, "NegotiateProtocolVersion option");
      const unrecognizedOptions = new Array<string>(n);
      for (let i = 0; i < n; i++) unrecognizedOptions[i] = r.cstring("NegotiateProtocolVersion option");
      m = { type: "NegotiateProtocolVersion", newestProtocolVersion, unrecognizedOptions };
      break;
    }
    case T.NoData:
      m = { type: "NoData" };
      break;
    case T.NoticeResponse:
      m = { type: "NoticeResponse", fields: readFields(r, "NoticeResponse") };
      break;
    case T.NotificationResponse: {
      const processId = r.int32("NotificationResponse process ID");
      const channel = r.cstring("NotificationResponse channel");
      m = { type: "NotificationResponse", processId, channel, payload: r.cstring("NotificationResponse payload") };
      break;
    }
    case T.ParameterDescription:
      m = { type: "ParameterDescription", parameterTypes: readOids(r, "ParameterDescription type") };
      break;
    case T.ParameterStatus: {
      const name = r.cstring("ParameterStatus name");
      m = { type: "ParameterStatus", name, value: r.cstring("ParameterStatus value") };
      break;
    }
    case T.ParseComplete:
      m = { type: "ParseComplete" };
      break;
    case T.PortalSuspended:
      m = { type: "PortalSuspended" };
      break;
    case T.ReadyForQuery: {
      const status = r.byte("ReadyForQuery status");
      if (
        status !== TransactionStatus.Idle &&
        status !== TransactionStatus.InTransaction &&
        status !== TransactionStatus.Failed
      ) {
        throw new ProtocolError(`ReadyForQuery status is ${typeByteLabel(status)}, not 'I', 'T' or 'E'`);
      }
      m = { type: "ReadyForQuery", status };
      break;
    }
    case T.RowDescription:
      m = { type: "RowDescription", fields: readFieldDescriptions(r) };
      break;
    default:
      throw new ProtocolError(`unknown backend message type ${typeByteLabel(type)}`);
  }
  r.done(m.type);
  return m;
}

function decodeAuthentication(r: BufferReader): AuthenticationMessage {
  const code = r.int32("Authentication code");
  switch (code) {
    case A.Ok:
      return { type: "AuthenticationOk" };
    case A.KerberosV5:
      return { type: "AuthenticationKerberosV5" };
    case A.CleartextPassword:
      return { type: "AuthenticationCleartextPassword" };
    case A.MD5Password:
      return { type: "AuthenticationMD5Password", salt: r.bytes(4, "AuthenticationMD5Password salt") };
    case A.GSS:
      return { type: "AuthenticationGSS" };
    case A.GSSContinue:
      return { type: "AuthenticationGSSContinue", data: r.rest() };
    case A.SSPI:
      return { type: "AuthenticationSSPI" };
    case A.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const mechanism = r.cstring("AuthenticationSASL mechanism");
        if (mechanism === "") return { type: "AuthenticationSASL", mechanisms };
        mechanisms.push(mechanism);
      }
    }
    case A.SASLContinue:
      return { type: "AuthenticationSASLContinue", data: r.rest() };
    case A.SASLFinal:
      return { type: "AuthenticationSASLFinal", data: r.rest() };
    default:
      throw new ProtocolError(`unknown Authentication code ${code}`);
  }
}

/**
 * ErrorResponse and NoticeResponse fields: a code byte and a string each, until a zero byte. Any code
 * decodes (the docs reserve the right to add more); a repeated code keeps its last value.
 */
function readFields(r: BufferReader, what: string): ErrorFields {
  const fields: ErrorFields = new Map();
  for (;;) {
    const code = r.byte(what);
    if (code === 0) return fields;
    fields.set(FIELD_CODES[code]!, r.cstring(what));
  }
}

function readFieldDescriptions(r: BufferReader): FieldDescription[] {
  const n = readCount16(r, MIN_FIELD_DESCRIPTION_BYTES, "RowDescription field");
  const fields = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring("RowDescription field name"),
      tableOid: r.uint32("RowDescription table OID"),
      columnNumber: r.int16("RowDescription column number"),
      typeOid: r.uint32("RowDescription type OID"),
      typeSize: r.int16("RowDescription type size"),
      typeModifier: r.int32("RowDescription type modifier"),
      format: r.int16("RowDescription format"),
    };
  }
  return fields;
}
