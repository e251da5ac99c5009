/**
 * The fields of ErrorResponse and NoticeResponse ("Error and Notice Message Fields" in the protocol docs).
 * A message carries them as a map from the one-letter field code to its value, in wire order. Codes the
 * docs do not list are kept as they are: the docs say frontends should silently ignore unknown field types,
 * and new ones may be added in future versions.
 */
export type ErrorFields = Map<string, string>;

/** Field codes by the names the docs give them. */
export const ErrorField = {
  Severity: "S",
  /** The severity, never localized (PostgreSQL 9.6 and later). */
  SeverityNonLocalized: "V",
  /** The SQLSTATE code. */
  Code: "C",
  Message: "M",
  Detail: "D",
  Hint: "H",
  Position: "P",
  InternalPosition: "p",
  InternalQuery: "q",
  Where: "W",
  SchemaName: "s",
  TableName: "t",
  ColumnName: "c",
  DataTypeName: "d",
  ConstraintName: "n",
  File: "F",
  Line: "L",
  Routine: "R",
} as const;
export type ErrorField = (typeof ErrorField)[keyof typeof ErrorField];

const FIELD_NAMES: ReadonlyMap<string, string> = new Map(
  Object.entries(ErrorField).map(([name, code]) => [code, name] as const),
);

/** The docs' name of a field code (`"C"` → `"Code"`), or undefined for a code the docs do not list. */
export function errorFieldName(code: string): string | undefined {
  return FIELD_NAMES.get(code);
}

/** Severities PostgreSQL sends; ERROR, FATAL and PANIC in ErrorResponse, the others in NoticeResponse. */
export type ErrorSeverity = "ERROR" | "FATAL" | "PANIC" | "WARNING" | "NOTICE" | "DEBUG" | "INFO" | "LOG";

export interface ErrorFieldsInit {
  severity: ErrorSeverity;
  /** SQLSTATE, five characters. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * The fields of an error or notice pgmux raises itself. Severity goes in both S and V, as PostgreSQL sends
 * it, so clients that prefer the non-localized V find it too.
 */
export function errorFields(init: ErrorFieldsInit): ErrorFields {
  if (!SQLSTATE.test(init.code)) throw new RangeError(`not a SQLSTATE: ${JSON.stringify(init.code)}`);
  const fields: ErrorFields = new Map([
    [ErrorField.Severity, init.severity],
    [ErrorField.SeverityNonLocalized, init.severity],
    [ErrorField.Code, init.code],
    [ErrorField.Message, init.message],
  ]);
  if (init.detail !== undefined) fields.set(ErrorField.Detail, init.detail);
  if (init.hint !== undefined) fields.set(ErrorField.Hint, init.hint);
  return fields;
}

/** The non-localized severity when present (V), else the possibly localized one (S). */
export function errorSeverity(fields: ReadonlyMap<string, string>): string | undefined {
  return fields.get(ErrorField.SeverityNonLocalized) ?? fields.get(ErrorField.Severity);
}

/** The SQLSTATE, or undefined: a server's error need not carry one and must still be relayed. */
export function errorCode(fields: ReadonlyMap<string, string>): string | undefined {
  return fields.get(ErrorField.Code);
}

export function errorMessage(fields: ReadonlyMap<string, string>): string | undefined {
  return fields.get(ErrorField.Message);
}
