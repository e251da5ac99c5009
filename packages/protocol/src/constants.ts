/** Protocol version codes and untyped request codes, as the "Message Formats" section defines them. */
export const ProtocolVersion = {
  /** 3.0: (3 << 16) | 0 */
  V3_0: 196608,
  /** 3.2 (PostgreSQL 18): variable-length cancel keys. */
  V3_2: 196610,
} as const;

export const RequestCode = {
  CancelRequest: 80877102,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
} as const;

/** Bytes of a typed message header: 1 type byte + 4 length bytes. */
export const TYPED_HEADER_BYTES = 5;
/** Bytes of an untyped (startup family) header: 4 length bytes + 4 code bytes. */
export const UNTYPED_HEADER_BYTES = 8;

/** Longest cancel key protocol 3.2 allows (BackendKeyData, CancelRequest). */
export const MAX_CANCEL_KEY_BYTES = 256;

/** ReadyForQuery transaction status bytes. */
export const TransactionStatus = {
  Idle: 0x49, // 'I'
  InTransaction: 0x54, // 'T'
  Failed: 0x45, // 'E'
} as const;
export type TransactionStatus = (typeof TransactionStatus)[keyof typeof TransactionStatus];
