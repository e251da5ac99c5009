/**
 * Decoders of frontend messages. They take a frame as the frame reader delivers it: the type byte, and the
 * body `buf[start, end)` that follows the length field. Each decoder consumes the body exactly; anything
 * malformed (a short or overlong body, a count the body cannot hold, an unknown type or code) raises
 * ProtocolError and nothing else.
 *
 * Ownership: Buffer fields (parameters, CopyData, SASL data, cancel keys) are views into `buf`, not
 * copies. They are valid only while `buf` is; copy what you keep past the current message.
 */
import { BufferReader } from "./buffer-reader.js";
import { MAX_CANCEL_KEY_BYTES, RequestCode } from "./constants.js";
import {
  type CancelRequest,
  type StartupFamilyMessage,
  type StartupMessage,
  type StatementOrPortal,
  FrontendMessageType as T,
  type TypedFrontendMessage,
} from "./frontend-messages.js";
import { ProtocolError } from "./protocol-error.js";
import {
  checkFrameBounds,
  readInt16s,
  readNullableBytes,
  readNullableBytesArray,
  readOids,
  typeByteLabel,
} from "./wire-fields.js";

/**
 * What a 'p' message is: the type byte is shared by PasswordMessage, SASLInitialResponse, SASLResponse and
 * GSSResponse, and only the authentication exchange in progress says which one the client sent.
 */
export type PasswordKind = "password" | "sasl-initial" | "sasl" | "gss";

function readStatementOrPortal(r: BufferReader, what: string): StatementOrPortal {
  const kind = r.byte(what);
  if (kind === 0x53) return "S";
  if (kind === 0x50) return "P";
  throw new ProtocolError(`${what} is ${typeByteLabel(kind)}, not 'S' or 'P'`);
}

/** Decodes a typed frontend message. `passwordKind` says how to read a 'p' message (default: password). */
export function decodeFrontendMessage(
  type: number,
  buf: Buffer,
  start: number,
  end: number,
  passwordKind: PasswordKind = "password",
): TypedFrontendMessage {
  checkFrameBounds(buf, start, end);
  const r = new BufferReader(buf, start, end);
  let m: TypedFrontendMessage;
  switch (type) {
    case T.Bind: {
      const portal = r.cstring("Bind portal");
      const statement = r.cstring("Bind statement");
      const parameterFormats = readInt16s(r, "Bind parameter format");
      const parameters = readNullableBytesArray(r, "Bind parameter");
      const resultFormats = readInt16s(r, "Bind result format");
      m = { type: "Bind", portal, statement, parameterFormats, parameters, resultFormats };
      break;
    }
    case T.Close: {
      const kind = readStatementOrPortal(r, "Close kind");
      m = { type: "Close", kind, name: r.cstring("Close name") };
      break;
    }
    case T.CopyData:
      m = { type: "CopyData", data: r.rest() };
      break;
    case T.CopyDone:
      m = { type: "CopyDone" };
      break;
    case T.CopyFail:
      m = { type: "CopyFail", message: r.cstring("CopyFail message") };
      break;
    case T.Describe: {
      const kind = readStatementOrPortal(r, "Describe kind");
      m = { type: "Describe", kind, name: r.cstring("Describe name") };
      break;
    }
    case T.Execute: {
      const portal = r.cstring("Execute portal");
      m = { type: "Execute", portal, maxRows: r.int32("Execute row limit") };
      break;
    }
    case T.Flush:
      m = { type: "Flush" };
      break;
    case T.FunctionCall: {
      const functionOid = r.uint32("FunctionCall function OID");
      const argumentFormats = readInt16s(r, "FunctionCall argument format");
      const args = readNullableBytesArray(r, "FunctionCall argument");
      const resultFormat = r.int16("FunctionCall result format");
      m = { type: "FunctionCall", functionOid, argumentFormats, arguments: args, resultFormat };
      break;
    }
    case T.Parse: {
      const statement = r.cstring("Parse statement");
      const query = r.cstring("Parse query");
      m = { type: "Parse", statement, query, parameterTypes: readOids(r, "Parse parameter type") };
      break;
    }
    case T.PasswordMessage:
      m = decodePasswordFamily(r, passwordKind);
      break;
    case T.Query:
      m = { type: "Query", query: r.cstring("Query string") };
      break;
    case T.Sync:
      m = { type: "Sync" };
      break;
    case T.Terminate:
      m = { type: "Terminate" };
      break;
    default:
      throw new ProtocolError(`unknown frontend message type ${typeByteLabel(type)}`);
  }
  r.done(m.type);
  return m;
}

function decodePasswordFamily(r: BufferReader, kind: PasswordKind): TypedFrontendMessage {
  switch (kind) {
    case "password":
      return { type: "PasswordMessage", password: r.cstring("password") };
    case "sasl-initial": {
      const mechanism = r.cstring("SASL mechanism");
      return { type: "SASLInitialResponse", mechanism, data: readNullableBytes(r, "SASL initial response") };
    }
    case "sasl":
      return { type: "SASLResponse", data: r.rest() };
    case "gss":
      return { type: "GSSResponse", data: r.rest() };
  }
}

/**
 * Decodes an untyped frame (the first message of a connection), dispatching on its 4-byte code:
 * StartupMessage of any 3.x version, SSLRequest, GSSENCRequest, or CancelRequest with a 4 to 256-byte key.
 */
export function decodeStartupFamily(buf: Buffer, start: number, end: number): StartupFamilyMessage {
  checkFrameBounds(buf, start, end);
  const r = new BufferReader(buf, start, end);
  const code = r.int32("protocol version or request code");
  let m: StartupFamilyMessage;
  switch (code) {
    case RequestCode.SSLRequest:
      m = { type: "SSLRequest" };
      break;
    case RequestCode.GSSENCRequest:
      m = { type: "GSSENCRequest" };
      break;
    case RequestCode.CancelRequest:
      m = decodeCancelRequest(r);
      break;
    default:
      if (code >>> 16 !== 3) {
        throw new ProtocolError(`unsupported protocol version ${code >>> 16}.${code & 0xffff} or request code`);
      }
      m = decodeStartupParameters(r, code);
  }
  r.done(m.type);
  return m;
}

function decodeCancelRequest(r: BufferReader): CancelRequest {
  const processId = r.int32("CancelRequest process ID");
  const secretKey = r.rest();
  if (secretKey.length < 4 || secretKey.length > MAX_CANCEL_KEY_BYTES) {
    throw new ProtocolError(`CancelRequest secret key is ${secretKey.length} bytes, not 4 to ${MAX_CANCEL_KEY_BYTES}`);
  }
  return { type: "CancelRequest", processId, secretKey };
}

function decodeStartupParameters(r: BufferReader, protocolVersion: number): StartupMessage {
  const parameters: [string, string][] = [];
  for (;;) {
    const name = r.cstring("StartupMessage parameter name");
    if (name === "") break;
    parameters.push([name, r.cstring("StartupMessage parameter value")]);
  }
  return { type: "StartupMessage", protocolVersion, parameters };
}
