/**
 * fast-check arbitraries of valid protocol messages, one per message kind and one per direction, for
 * property tests here and in other packages. Test-only: not exported from the package index.
 */
import fc from "fast-check";
import type { BackendMessage, FieldDescription } from "../backend-messages.js";
import { MAX_CANCEL_KEY_BYTES, ProtocolVersion, TransactionStatus } from "../constants.js";
import type { Bind, FrontendMessage, FunctionCall } from "../frontend-messages.js";

type Kind<M extends { type: string }, K extends M["type"]> = Extract<M, { type: K }>;
/** One arbitrary per message kind, keyed by its `type`: a missing kind is a compile error. */
export type ArbitrariesByKind<M extends { type: string }> = { [K in M["type"]]: fc.Arbitrary<Kind<M, K>> };

/** Any Unicode scalar value but NUL (protocol strings are NUL-terminated) and lone surrogates (not UTF-8). */
const char = fc
  .oneof(fc.integer({ min: 1, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
  .map((cp) => String.fromCodePoint(cp));

export const protocolString = (maxLength = 24): fc.Arbitrary<string> => fc.string({ unit: char, maxLength });
const nonEmptyString = (maxLength = 24): fc.Arbitrary<string> => fc.string({ unit: char, minLength: 1, maxLength });

export const bytes = (minLength = 0, maxLength = 64): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength, maxLength }).map((a) => Buffer.from(a));

const nullableBytes = fc.option(bytes(0, 32), { nil: null, freq: 5 });
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const oid = fc.integer({ min: 0, max: 0xffffffff });
const format = fc.constantFrom(0, 1);
const statementOrPortal = fc.constantFrom("S" as const, "P" as const);
const cancelKey = fc.oneof(bytes(4, 4), bytes(32, 32), bytes(4, MAX_CANCEL_KEY_BYTES));

/** Values with format codes as the docs allow: none, one for all, or one per value. */
const formattedValues: fc.Arbitrary<[(Buffer | null)[], number[]]> = fc
  .array(nullableBytes, { maxLength: 8 })
  .chain((values) =>
    fc.tuple(
      fc.constant(values),
      fc.oneof(
        fc.array(format, { maxLength: 0 }),
        fc.array(format, { minLength: 1, maxLength: 1 }),
        fc.array(format, { minLength: values.length, maxLength: values.length }),
      ),
    ),
  );

const bind: fc.Arbitrary<Bind> = fc
  .record({
    portal: protocolString(),
    statement: protocolString(),
    formatted: formattedValues,
    resultFormats: fc.array(format, { maxLength: 8 }),
  })
  .map(({ portal, statement, formatted: [parameters, parameterFormats], resultFormats }) => ({
    type: "Bind",
    portal,
    statement,
    parameterFormats,
    parameters,
    resultFormats,
  }));

const functionCall: fc.Arbitrary<FunctionCall> = fc
  .record({ functionOid: oid, formatted: formattedValues, resultFormat: format })
  .map(({ functionOid, formatted: [args, argumentFormats], resultFormat }) => ({
    type: "FunctionCall",
    functionOid,
    argumentFormats,
    arguments: args,
    resultFormat,
  }));

/** 3.0, 3.2, and other 3.x minor versions a newer client may ask for. */
const protocolVersion = fc.oneof(
  fc.constantFrom(ProtocolVersion.V3_0, ProtocolVersion.V3_2),
  fc.integer({ min: 0, max: 0xffff }).map((minor) => (3 << 16) | minor),
);

const startupParameters = fc.array(fc.tuple(nonEmptyString(), protocolString()), { maxLength: 6 });

export const frontendMessageArbitraries: ArbitrariesByKind<FrontendMessage> = {
  Bind: bind,
  CancelRequest: fc.record({ type: fc.constant("CancelRequest"), processId: int32, secretKey: cancelKey }),
  Close: fc.record({ type: fc.constant("Close"), kind: statementOrPortal, name: protocolString() }),
  CopyData: fc.record({ type: fc.constant("CopyData"), data: bytes() }),
  CopyDone: fc.constant({ type: "CopyDone" }),
  CopyFail: fc.record({ type: fc.constant("CopyFail"), message: protocolString() }),
  Describe: fc.record({ type: fc.constant("Describe"), kind: statementOrPortal, name: protocolString() }),
  Execute: fc.record({ type: fc.constant("Execute"), portal: protocolString(), maxRows: int32 }),
  Flush: fc.constant({ type: "Flush" }),
  FunctionCall: functionCall,
  GSSENCRequest: fc.constant({ type: "GSSENCRequest" }),
  GSSResponse: fc.record({ type: fc.constant("GSSResponse"), data: bytes() }),
  Parse: fc.record({
    type: fc.constant("Parse"),
    statement: protocolString(),
    query: protocolString(64),
    parameterTypes: fc.array(oid, { maxLength: 8 }),
  }),
  PasswordMessage: fc.record({ type: fc.constant("PasswordMessage"), password: protocolString() }),
  Query: fc.record({ type: fc.constant("Query"), query: protocolString(64) }),
  SASLInitialResponse: fc.record({
    type: fc.constant("SASLInitialResponse"),
    mechanism: fc.oneof(fc.constantFrom("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"), nonEmptyString()),
    data: fc.option(bytes(), { nil: null }),
  }),
  SASLResponse: fc.record({ type: fc.constant("SASLResponse"), data: bytes() }),
  SSLRequest: fc.constant({ type: "SSLRequest" }),
  StartupMessage: fc.record({
    type: fc.constant("StartupMessage"),
    protocolVersion,
    parameters: startupParameters,
  }),
  Sync: fc.constant({ type: "Sync" }),
  Terminate: fc.constant({ type: "Terminate" }),
};

/** Field codes the docs list, and a few they do not: unknown codes must pass through. */
const fieldCode = fc.oneof(
  fc.constantFrom("S", "V", "C", "M", "D", "H", "P", "p", "q", "W", "s", "t", "c", "d", "n", "F", "L", "R"),
  fc.integer({ min: 1, max: 0xff }).map((c) => String.fromCharCode(c)),
);
const errorFields = fc
  .uniqueArray(fc.tuple(fieldCode, protocolString()), { selector: ([code]) => code, maxLength: 8 })
  .map((entries) => new Map(entries));

const copyResponse = <K extends "CopyInResponse" | "CopyOutResponse" | "CopyBothResponse">(type: K) =>
  fc.record({ type: fc.constant(type), format, columnFormats: fc.array(format, { maxLength: 8 }) });

const fieldDescription: fc.Arbitrary<FieldDescription> = fc.record({
  name: protocolString(),
  tableOid: oid,
  columnNumber: int16,
  typeOid: oid,
  typeSize: int16,
  typeModifier: int32,
  format,
});

export const backendMessageArbitraries: ArbitrariesByKind<BackendMessage> = {
  AuthenticationOk: fc.constant({ type: "AuthenticationOk" }),
  AuthenticationKerberosV5: fc.constant({ type: "AuthenticationKerberosV5" }),
  AuthenticationCleartextPassword: fc.constant({ type: "AuthenticationCleartextPassword" }),
  AuthenticationMD5Password: fc.record({ type: fc.constant("AuthenticationMD5Password"), salt: bytes(4, 4) }),
  AuthenticationGSS: fc.constant({ type: "AuthenticationGSS" }),
  AuthenticationGSSContinue: fc.record({ type: fc.constant("AuthenticationGSSContinue"), data: bytes() }),
  AuthenticationSSPI: fc.constant({ type: "AuthenticationSSPI" }),
  AuthenticationSASL: fc.record({
    type: fc.constant("AuthenticationSASL"),
    mechanisms: fc.array(fc.oneof(fc.constantFrom("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"), nonEmptyString()), {
      maxLength: 4,
    }),
  }),
  AuthenticationSASLContinue: fc.record({ type: fc.constant("AuthenticationSASLContinue"), data: bytes() }),
  AuthenticationSASLFinal: fc.record({ type: fc.constant("AuthenticationSASLFinal"), data: bytes() }),
  BackendKeyData: fc.record({
    type: fc.constant("BackendKeyData"),
    processId: int32,
    secretKey: cancelKey,
  }),
  BindComplete: fc.constant({ type: "BindComplete" }),
  CloseComplete: fc.constant({ type: "CloseComplete" }),
  CommandComplete: fc.record({
    type: fc.constant("CommandComplete"),
    tag: fc.oneof(fc.constantFrom("SELECT 1", "INSERT 0 1", "BEGIN", "COMMIT"), protocolString()),
  }),
  CopyData: fc.record({ type: fc.constant("CopyData"), data: bytes() }),
  CopyDone: fc.constant({ type: "CopyDone" }),
  CopyInResponse: copyResponse("CopyInResponse"),
  CopyOutResponse: copyResponse("CopyOutResponse"),
  CopyBothResponse: copyResponse("CopyBothResponse"),
  DataRow: fc.record({ type: fc.constant("DataRow"), values: fc.array(nullableBytes, { maxLength: 8 }) }),
  EmptyQueryResponse: fc.constant({ type: "EmptyQueryResponse" }),
  ErrorResponse: fc.record({
    type: fc.constant("ErrorResponse"),
    fields: errorFields,
  }),
  FunctionCallResponse: fc.record({ type: fc.constant("FunctionCallResponse"), result: nullableBytes }),
  NegotiateProtocolVersion: fc.record({
    type: fc.constant("NegotiateProtocolVersion"),
    newestProtocolVersion: protocolVersion,
    unrecognizedOptions: fc.array(
      protocolString().map((s) => `_pq_.${s}`),
      { maxLength: 4 },
    ),
  }),
  NoData: fc.constant({ type: "NoData" }),
  NoticeResponse: fc.record({
    type: fc.constant("NoticeResponse"),
    fields: errorFields,
  }),
  NotificationResponse: fc.record({
    type: fc.constant("NotificationResponse"),
    processId: int32,
    channel: protocolString(),
    payload: protocolString(64),
  }),
  ParameterDescription: fc.record({
    type: fc.constant("ParameterDescription"),
    parameterTypes: fc.array(oid, { maxLength: 8 }),
  }),
  ParameterStatus: fc.record({ type: fc.constant("ParameterStatus"), name: protocolString(), value: protocolString() }),
  ParseComplete: fc.constant({ type: "ParseComplete" }),
  PortalSuspended: fc.constant({ type: "PortalSuspended" }),
  ReadyForQuery: fc.record({
    type: fc.constant("ReadyForQuery"),
    status: fc.constantFrom(TransactionStatus.Idle, TransactionStatus.InTransaction, TransactionStatus.Failed),
  }),
  RowDescription: fc.record({
    type: fc.constant("RowDescription"),
    fields: fc.array(fieldDescription, { maxLength: 6 }),
  }),
};

function oneOfKinds<M extends { type: string }>(byKind: ArbitrariesByKind<M>): fc.Arbitrary<M> {
  const arbitraries: fc.Arbitrary<M>[] = Object.values<fc.Arbitrary<M>>(byKind);
  return fc.oneof(...arbitraries);
}

/** Any valid frontend message, every kind equally likely. */
export const frontendMessageArbitrary: fc.Arbitrary<FrontendMessage> = oneOfKinds(frontendMessageArbitraries);

/** Any valid backend message, every kind equally likely. */
export const backendMessageArbitrary: fc.Arbitrary<BackendMessage> = oneOfKinds(backendMessageArbitraries);
