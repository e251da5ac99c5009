/**
 * Message names by type byte, as a protocol dissector shows them, for the live trace. The tables are built
 * once; a lookup is an array index and returns a string made at load time, so tracing allocates nothing.
 */
import { AuthenticationCode, BackendMessageType } from "./backend-messages.js";
import { RequestCode } from "./constants.js";
import { FrontendMessageType } from "./frontend-messages.js";

export type MessageDirection = "frontend" | "backend";

function unknownName(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  return code >= 0x21 && code <= 0x7e ? `Unknown('${String.fromCharCode(code)}', ${hex})` : `Unknown(${hex})`;
}

function buildTable(types: Readonly<Record<string, number>>): string[] {
  const table = Array.from({ length: 256 }, (_, i) => unknownName(i));
  for (const [name, type] of Object.entries(types)) table[type] = name;
  return table;
}

const FRONTEND_NAMES = buildTable(FrontendMessageType);
// 'p' is four messages; only the authentication exchange in progress tells which.
FRONTEND_NAMES[FrontendMessageType.PasswordMessage] = "PasswordMessage/SASLInitialResponse/SASLResponse/GSSResponse";

const BACKEND_NAMES = buildTable(BackendMessageType);

/**
 * The name of a typed message: `messageName("backend", 0x45)` is "ErrorResponse"; 'R' is "Authentication"
 * (see authenticationName for its kinds). Untyped frames have no type byte: name them with
 * startupMessageName.
 */
export function messageName(direction: MessageDirection, type: number): string {
  const table = direction === "frontend" ? FRONTEND_NAMES : BACKEND_NAMES;
  return table[type & 0xff]!;
}

const STARTUP_UNKNOWN = "Unknown";

/**
 * The name of an untyped (startup family) frame from its 4-byte code: CancelRequest, SSLRequest,
 * GSSENCRequest, or StartupMessage for any 3.x protocol version.
 */
export function startupMessageName(code: number): string {
  switch (code) {
    case RequestCode.CancelRequest:
      return "CancelRequest";
    case RequestCode.SSLRequest:
      return "SSLRequest";
    case RequestCode.GSSENCRequest:
      return "GSSENCRequest";
    default:
      return code >>> 16 === 3 ? "StartupMessage" : STARTUP_UNKNOWN;
  }
}

const AUTHENTICATION_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(AuthenticationCode).map(([name, code]) => [code, `Authentication${name}`] as const),
);

/** The name of an Authentication message from the Int32 code after 'R': 10 is "AuthenticationSASL". */
export function authenticationName(code: number): string {
  return AUTHENTICATION_NAMES.get(code) ?? "AuthenticationUnknown";
}
