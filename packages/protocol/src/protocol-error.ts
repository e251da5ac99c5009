/**
 * Raised by the codec for bytes that do not form a valid protocol message: a malformed header, a length over
 * the configured limit, a body that ends before its fields do. The pooler answers it with SQLSTATE 08P01
 * (protocol_violation) and closes only the connection that sent the bytes.
 */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  /** SQLSTATE the pooler reports for this error. */
  readonly sqlState = "08P01";
}
