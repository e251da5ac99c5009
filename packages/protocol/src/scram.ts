import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { ProtocolError } from "./protocol-error.js";
import { scramPassword } from "./saslprep.js";

/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, for both roles:
 * - `ScramClient`: pgmux logging in to a PostgreSQL server, with a password or with ClientKey + ServerKey.
 * - `ScramServer`: pgmux authenticating an application against a stored verifier.
 *
 * This module handles the SASL payload strings only (client-first-message, server-first-message, ...); the
 * SASLInitialResponse / SASLResponse / AuthenticationSASL* framing belongs to the message encoders.
 *
 * PBKDF2 runs on libuv's thread pool (`crypto.pbkdf2`), never synchronously: a synchronous one would stall every
 * other connection of the process for the whole key stretch. Secret comparisons use `timingSafeEqual`.
 * Anything malformed from the peer raises ProtocolError (SQLSTATE 08P01); a server that refuses us or proves it
 * does not know the password raises ScramError.
 */

export const ScramMechanism = {
  ScramSha256: "SCRAM-SHA-256",
  ScramSha256Plus: "SCRAM-SHA-256-PLUS",
} as const;
export type ScramMechanism = (typeof ScramMechanism)[keyof typeof ScramMechanism];

/** PostgreSQL's default `scram_iterations`; a mock verifier must use what real verifiers use to look like one. */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
/** Most PBKDF2 iterations the client role accepts from a server unless told otherwise (a few seconds of CPU). */
export const SCRAM_MAX_ITERATIONS = 10_000_000;
/** Longest SCRAM payload accepted from a peer, in bytes. Real ones are a few hundred. */
export const SCRAM_MAX_MESSAGE_BYTES = 4096;
/** Longest nonce accepted from a peer (client nonce, or client + server nonce). */
export const SCRAM_MAX_NONCE_LENGTH = 1024;

/** SHA-256 output: the size of every key, signature and proof. */
const KEY_BYTES = 32;
/** Random bytes in a nonce we create (base64: 24 characters), as PostgreSQL and libpq use. */
const RAW_NONCE_BYTES = 18;
/** Salt bytes in a verifier we build, as PostgreSQL uses. */
const DEFAULT_SALT_BYTES = 16;
/** Verifiers store iterations in a 32-bit int, and pbkdf2 takes no more. */
const MAX_STORED_ITERATIONS = 2_147_483_647;

/** A parsed `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` verifier. */
export interface ScramVerifier {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** ClientKey and ServerKey derived from a password, salt and iteration count. */
export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
}

/** Channel binding data of a TLS connection (RFC 5929 tls-server-end-point: the hash of the server certificate). */
export interface ScramChannelBindingData {
  readonly type: "tls-server-end-point";
  readonly data: Uint8Array;
}

/**
 * What the client says about channel binding (RFC 5802 gs2-cbind-flag): "n" it does not support it, "y" it does
 * but believes the server does not, "p" it binds to the given TLS channel (mechanism SCRAM-SHA-256-PLUS).
 */
export type ScramChannelBinding =
  | { readonly flag: "n" }
  | { readonly flag: "y" }
  | ({ readonly flag: "p" } & ScramChannelBindingData);

/**
 * What the client role proves knowledge of: the password, or the keys derived from it. The keys let pgmux log in
 * when it holds no password: from a verifier's ServerKey plus the ClientKey a client proved (SCRAM passthrough),
 * or from keys it derived once and cached. They only work with the salt and iterations they were derived from.
 */
export type ScramCredentials =
  | { readonly password: string | Uint8Array }
  | { readonly clientKey: Uint8Array; readonly serverKey: Uint8Array };

export interface ScramClientOptions {
  readonly credentials: ScramCredentials;
  /** Default `{ flag: "n" }`. */
  readonly channelBinding?: ScramChannelBinding;
  /**
   * Username sent in client-first-message (saslname escaping is applied). PostgreSQL ignores it and takes the
   * user from the StartupMessage, so the default is empty, as libpq sends.
   */
  readonly username?: string;
  /** Our nonce; random unless a test needs a known one. Printable ASCII without ",". */
  readonly nonce?: string;
  /** Refuse a server-first-message asking for more PBKDF2 iterations than this. Default SCRAM_MAX_ITERATIONS. */
  readonly maxIterations?: number;
}

export interface ScramServerOptions {
  /** The mechanism the client chose in its SASLInitialResponse. Default SCRAM-SHA-256. */
  readonly mechanism?: ScramMechanism;
  /**
   * The TLS channel's binding data, given exactly when the server offered SCRAM-SHA-256-PLUS. A client that says
   * "y" (supports binding, thinks we do not) is then refused as a downgrade.
   */
  readonly channelBinding?: ScramChannelBindingData;
  /** Our part of the nonce; random unless a test needs a known one. Printable ASCII without ",". */
  readonly nonce?: string;
}

export type ScramServerFinalResult =
  | {
      readonly ok: true;
      /** The server-final-message ("v=..."), for AuthenticationSASLFinal. */
      readonly serverFinalMessage: string;
      /** The client's ClientKey, recovered from its proof: lets pgmux log in to PostgreSQL as this client. */
      readonly clientKey: Buffer;
    }
  | { readonly ok: false };

/** Authentication failed on the server's word or for lack of its proof: not a malformed message. */
export class ScramError extends Error {
  override readonly name = "ScramError";
  /** The server's `e=` value (RFC 5802 server-error-value, e.g. "invalid-proof") when it reported the failure. */
  readonly serverError: string | undefined;

  constructor(message: string, serverError?: string) {
    super(message);
    this.serverError = serverError;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Primitives

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64: Buffer.from(…, "base64") silently skips junk, which would let garbage through as a key. */
function decodeBase64(text: string): Buffer | null {
  if (!BASE64.test(text)) return null;
  const bytes = Buffer.from(text, "base64");
  // Non-zero bits under the padding decode fine but no encoder writes them: only canonical text is accepted.
  return bytes.toString("base64") === text ? bytes : null;
}

function hmac(key: Uint8Array, data: string | Uint8Array): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

function pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, KEY_BYTES, "sha256", (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

function checkIterations(iterations: number, max: number): void {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > max) {
    throw new RangeError(`SCRAM iterations must be an integer from 1 to ${max}, got ${iterations}`);
  }
}

/**
 * SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations); ClientKey and ServerKey are HMACs
 * of it. The password is prepared as PostgreSQL does (see `scramPassword`). Runs off the event loop.
 */
export async function deriveScramKeys(
  password: string | Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<ScramKeys> {
  checkIterations(iterations, MAX_STORED_ITERATIONS);
  const salted = await pbkdf2Sha256(scramPassword(password), salt, iterations);
  const keys = { clientKey: hmac(salted, "Client Key"), serverKey: hmac(salted, "Server Key") };
  salted.fill(0);
  return keys;
}

// ---------------------------------------------------------------------------------------------------------------
// Verifiers

const VERIFIER = /^SCRAM-SHA-256\$([1-9][0-9]{0,9}):([^$:]+)\$([^$:]+):([^$:]+)$/;

/**
 * Parses a verifier as PostgreSQL stores it in pg_authid.rolpassword. Returns null for anything else (an MD5
 * secret, a plaintext password, a truncated or corrupted verifier): the caller decides what the text is.
 */
export function parseScramVerifier(text: string): ScramVerifier | null {
  const match = VERIFIER.exec(text);
  if (match === null) return null;
  const iterations = Number(match[1]);
  const salt = decodeBase64(match[2] ?? "");
  const storedKey = decodeBase64(match[3] ?? "");
  const serverKey = decodeBase64(match[4] ?? "");
  if (iterations > MAX_STORED_ITERATIONS || salt === null || salt.length === 0) return null;
  if (storedKey?.length !== KEY_BYTES || serverKey?.length !== KEY_BYTES) return null;
  return { iterations, salt, storedKey, serverKey };
}

export function formatScramVerifier(verifier: ScramVerifier): string {
  const { iterations, salt, storedKey, serverKey } = verifier;
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** Builds the verifier PostgreSQL would store for `password` (random 16-byte salt unless given). */
export async function buildScramVerifier(
  password: string | Uint8Array,
  options: { readonly iterations?: number; readonly salt?: Uint8Array } = {},
): Promise<string> {
  const iterations = options.iterations ?? SCRAM_DEFAULT_ITERATIONS;
  checkIterations(iterations, MAX_STORED_ITERATIONS);
  const salt = options.salt === undefined ? randomBytes(DEFAULT_SALT_BYTES) : Buffer.from(options.salt);
  if (salt.length === 0) throw new RangeError("a SCRAM salt must not be empty");
  const { clientKey, serverKey } = await deriveScramKeys(password, salt, iterations);
  return formatScramVerifier({ iterations, salt, storedKey: sha256(clientKey), serverKey });
}

/**
 * A verifier for a user that does not exist, so that the exchange runs exactly as for a real user and fails only
 * at the proof: the same messages, the same work, the same answer (28P01), and nothing in the timing. It is
 * derived from `secret` (a per-process random value) and the user name, so asking twice about the same unknown
 * user shows the same salt, as it would for a real one. No password matches it: its StoredKey is not the hash of
 * any known ClientKey.
 */
export function mockScramVerifier(
  user: string,
  secret: string | Uint8Array,
  options: { readonly iterations?: number } = {},
): ScramVerifier {
  if ((typeof secret === "string" ? Buffer.byteLength(secret) : secret.length) === 0) {
    throw new RangeError("the mock verifier secret must not be empty");
  }
  const derive = (label: string): Buffer => createHmac("sha256", secret).update(`${label}\0${user}`).digest();
  const iterations = options.iterations ?? SCRAM_DEFAULT_ITERATIONS;
  checkIterations(iterations, MAX_STORED_ITERATIONS);
  return {
    iterations,
    salt: derive("salt").subarray(0, DEFAULT_SALT_BYTES),
    storedKey: derive("stored-key"),
    serverKey: derive("server-key"),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Message grammar (RFC 5802 section 7)

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u;
/** printable = %x21-2B / %x2D-7E: ASCII without space, control characters and ",". */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const CB_NAME = /^[A-Za-z0-9.-]+$/;
/**
 * attr-val = ALPHA "=" value (NUL and "," are excluded before this is used). The RFC wants a non-empty value;
 * PostgreSQL accepts an empty one, and a pooler must not refuse what the server would take.
 */
const EXTENSION = /^[A-Za-z]=/;
const ITERATIONS = /^[1-9][0-9]{0,9}$/;

function malformed(what: string, detail: string): ProtocolError {
  return new ProtocolError(`malformed SCRAM ${what}: ${detail}`);
}

/** Bounds, decodes and screens a peer's payload before any parsing looks at it. */
function readMessage(message: string | Uint8Array, what: string): string {
  let text: string;
  if (typeof message === "string") {
    // UTF-16 units never outnumber UTF-8 bytes, so the cheap test first keeps a huge string from being scanned.
    if (message.length > SCRAM_MAX_MESSAGE_BYTES || Buffer.byteLength(message) > SCRAM_MAX_MESSAGE_BYTES) {
      throw malformed(what, `longer than ${SCRAM_MAX_MESSAGE_BYTES} bytes`);
    }
    if (LONE_SURROGATE.test(message)) throw malformed(what, "not valid Unicode");
    text = message;
  } else {
    if (message.length > SCRAM_MAX_MESSAGE_BYTES) throw malformed(what, `longer than ${SCRAM_MAX_MESSAGE_BYTES} bytes`);
    try {
      text = STRICT_UTF8.decode(message);
    } catch {
      throw malformed(what, "not valid UTF-8");
    }
  }
  if (text.includes("\0")) throw malformed(what, "contains a NUL character");
  return text;
}

/** Value of attribute `name` in `part` ("r=abc" → "abc"), or a ProtocolError naming what was expected. */
function attribute(part: string | undefined, name: string, what: string): string {
  if (part === undefined || !part.startsWith(`${name}=`)) throw malformed(what, `expected attribute "${name}"`);
  return part.slice(2);
}

function checkExtensions(parts: readonly string[], what: string): void {
  for (const part of parts) {
    if (!EXTENSION.test(part)) throw malformed(what, "attribute is not of the form x=value");
  }
}

function checkNonce(nonce: string, what: string): void {
  if (nonce.length > SCRAM_MAX_NONCE_LENGTH) throw malformed(what, `nonce longer than ${SCRAM_MAX_NONCE_LENGTH}`);
  if (!NONCE.test(nonce)) throw malformed(what, "nonce is empty or has characters outside printable ASCII");
}

function checkOwnNonce(nonce: string): void {
  if (nonce.length > SCRAM_MAX_NONCE_LENGTH || !NONCE.test(nonce)) {
    throw new RangeError("a SCRAM nonce is 1 to 1024 printable ASCII characters other than ','");
  }
}

function newNonce(): string {
  return randomBytes(RAW_NONCE_BYTES).toString("base64");
}

function gs2Header(binding: ScramChannelBinding): string {
  return binding.flag === "p" ? `p=${binding.type},,` : `${binding.flag},,`;
}

/** The c= attribute: the gs2 header, followed by the channel binding data when the client binds. */
function channelBindingInput(header: string, data: Uint8Array | undefined): Buffer {
  const headerBytes = Buffer.from(header, "utf8");
  return data === undefined ? headerBytes : Buffer.concat([headerBytes, data]);
}

function escapeSaslname(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

// ---------------------------------------------------------------------------------------------------------------
// Client role

const ClientPhase = { Initial: 0, FirstSent: 1, FinalSent: 2, Done: 3 } as const;
type ClientPhase = (typeof ClientPhase)[keyof typeof ClientPhase];

/**
 * pgmux logging in to PostgreSQL. One instance per exchange:
 * `clientFirst()` → SASLInitialResponse, `await clientFinal(serverFirst)` → SASLResponse,
 * `verifyServerFinal(serverFinal)` on AuthenticationSASLFinal (throws unless the server proved itself).
 */
export class ScramClient {
  /** The mechanism to name in SASLInitialResponse. */
  readonly mechanism: ScramMechanism;
  readonly #credentials: ScramCredentials;
  readonly #channelBinding: ScramChannelBinding;
  readonly #username: string;
  readonly #nonce: string;
  readonly #maxIterations: number;
  #phase: ClientPhase = ClientPhase.Initial;
  #clientFirstBare = "";
  #expectedServerSignature: Buffer | undefined;

  constructor(options: ScramClientOptions) {
    const { credentials } = options;
    if ("clientKey" in credentials) {
      if (credentials.clientKey.length !== KEY_BYTES || credentials.serverKey.length !== KEY_BYTES) {
        throw new RangeError(`SCRAM-SHA-256 keys are ${KEY_BYTES} bytes`);
      }
    }
    this.#credentials = credentials;
    this.#channelBinding = options.channelBinding ?? { flag: "n" };
    this.mechanism = this.#channelBinding.flag === "p" ? ScramMechanism.ScramSha256Plus : ScramMechanism.ScramSha256;
    this.#username = escapeSaslname(options.username ?? "");
    if (options.nonce !== undefined) checkOwnNonce(options.nonce);
    this.#nonce = options.nonce ?? newNonce();
    this.#maxIterations = options.maxIterations ?? SCRAM_MAX_ITERATIONS;
    checkIterations(this.#maxIterations, MAX_STORED_ITERATIONS);
  }

  /** The client-first-message, e.g. "n,,n=,r=<nonce>". */
  clientFirst(): string {
    this.#advance(ClientPhase.Initial, ClientPhase.FirstSent, "clientFirst");
    this.#clientFirstBare = `n=${this.#username},r=${this.#nonce}`;
    return gs2Header(this.#channelBinding) + this.#clientFirstBare;
  }

  /**
   * Checks the server-first-message (our nonce extended, a salt, a bounded iteration count) and returns the
   * client-final-message with our proof. Malformed or hostile input raises ProtocolError.
   */
  async clientFinal(serverFirst: string | Uint8Array): Promise<string> {
    this.#advance(ClientPhase.FirstSent, ClientPhase.FinalSent, "clientFinal");
    const what = "server-first-message";
    const text = readMessage(serverFirst, what);
    const parts = text.split(",");
    if (parts[0]?.startsWith("m=")) throw new ProtocolError("server requires a SCRAM extension that is not supported");
    const nonce = attribute(parts[0], "r", what);
    const saltText = attribute(parts[1], "s", what);
    const iterationsText = attribute(parts[2], "i", what);
    checkExtensions(parts.slice(3), what);
    checkNonce(nonce, what);
    if (nonce.length <= this.#nonce.length || !nonce.startsWith(this.#nonce)) {
      throw new ProtocolError("SCRAM server nonce does not extend the client nonce");
    }
    const salt = decodeBase64(saltText);
    if (salt === null || salt.length === 0) throw malformed(what, "salt is not base64");
    if (!ITERATIONS.test(iterationsText) || Number(iterationsText) > this.#maxIterations) {
      throw new ProtocolError(`SCRAM iteration count "${iterationsText}" is not between 1 and ${this.#maxIterations}`);
    }
    const iterations = Number(iterationsText);

    const { clientKey, serverKey } =
      "password" in this.#credentials
        ? await deriveScramKeys(this.#credentials.password, salt, iterations)
        : this.#credentials;
    const binding = this.#channelBinding;
    const cbind = channelBindingInput(gs2Header(binding), binding.flag === "p" ? binding.data : undefined);
    const withoutProof = `c=${cbind.toString("base64")},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${text},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.#expectedServerSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /**
   * Checks the server-final-message. Returns when the server proved it knows our verifier; throws ScramError
   * when it reported an error ("e=...") or its signature is wrong, ProtocolError when the message is malformed.
   */
  verifyServerFinal(serverFinal: string | Uint8Array): void {
    this.#advance(ClientPhase.FinalSent, ClientPhase.Done, "verifyServerFinal");
    const what = "server-final-message";
    const parts = readMessage(serverFinal, what).split(",");
    const first = parts[0] ?? "";
    checkExtensions(parts, what);
    if (first.startsWith("e=")) {
      const serverError = first.slice(2);
      throw new ScramError(`server rejected SCRAM authentication: ${serverError}`, serverError);
    }
    const signature = decodeBase64(attribute(first, "v", what));
    const expected = this.#expectedServerSignature;
    if (signature === null || signature.length !== KEY_BYTES || expected === undefined) {
      throw malformed(what, "server signature is not a base64 SHA-256 value");
    }
    if (!timingSafeEqual(signature, expected)) {
      throw new ScramError("SCRAM server signature does not match: the server does not hold this password's verifier");
    }
  }

  #advance(from: ClientPhase, to: ClientPhase, step: string): void {
    if (this.#phase !== from) throw new Error(`ScramClient.${step} called out of order`);
    this.#phase = to;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Server role

const ServerPhase = { Initial: 0, FirstSent: 1, Done: 2 } as const;
type ServerPhase = (typeof ServerPhase)[keyof typeof ServerPhase];

/**
 * pgmux authenticating an application. One instance per exchange:
 * `serverFirst(clientFirst, verifier)` → AuthenticationSASLContinue, `serverFinal(clientFinal)` → on `ok`,
 * AuthenticationSASLFinal with `serverFinalMessage` then AuthenticationOk; otherwise 28P01. For an unknown user,
 * pass `mockScramVerifier(user, secret)` and let the exchange fail at the proof like a wrong password.
 */
export class ScramServer {
  readonly #mechanism: ScramMechanism;
  readonly #channelBinding: ScramChannelBindingData | undefined;
  readonly #serverNonce: string;
  #phase: ServerPhase = ServerPhase.Initial;
  #verifier: ScramVerifier | undefined;
  #gs2Header = "";
  #clientFirstBare = "";
  #serverFirst = "";
  #nonce = "";

  constructor(options: ScramServerOptions = {}) {
    this.#mechanism = options.mechanism ?? ScramMechanism.ScramSha256;
    this.#channelBinding = options.channelBinding;
    if (this.#mechanism === ScramMechanism.ScramSha256Plus && this.#channelBinding === undefined) {
      throw new Error("SCRAM-SHA-256-PLUS needs the connection's channel binding data");
    }
    if (options.nonce !== undefined) checkOwnNonce(options.nonce);
    this.#serverNonce = options.nonce ?? newNonce();
  }

  /** Parses the client-first-message and returns the server-first-message ("r=...,s=...,i=..."). */
  serverFirst(clientFirstMessage: string | Uint8Array, verifier: ScramVerifier): string {
    if (this.#phase !== ServerPhase.Initial) throw new Error("ScramServer.serverFirst called out of order");
    this.#phase = ServerPhase.Done;
    const what = "client-first-message";
    const text = readMessage(clientFirstMessage, what);
    const parts = text.split(",");
    const flag = parts[0] ?? "";
    this.#checkChannelBindingFlag(flag, what);
    const authzid = parts[1];
    if (authzid === undefined) throw malformed(what, "no gs2 header");
    if (authzid !== "") {
      if (authzid.startsWith("a=")) throw new ProtocolError("SCRAM authorization identity is not supported");
      throw malformed(what, "unexpected gs2 header field");
    }
    if (parts[2]?.startsWith("m=")) throw new ProtocolError("SCRAM mandatory extensions are not supported");
    // PostgreSQL ignores the username (the StartupMessage names the user) and does not check its saslname
    // escaping; drivers send "", "*" or the user name, so it is not checked here either.
    attribute(parts[2], "n", what);
    const clientNonce = attribute(parts[3], "r", what);
    checkNonce(clientNonce, what);
    checkExtensions(parts.slice(4), what);

    this.#verifier = verifier;
    this.#gs2Header = `${flag},,`;
    this.#clientFirstBare = parts.slice(2).join(",");
    this.#nonce = clientNonce + this.#serverNonce;
    this.#serverFirst = `r=${this.#nonce},s=${verifier.salt.toString("base64")},i=${verifier.iterations}`;
    this.#phase = ServerPhase.FirstSent;
    return this.#serverFirst;
  }

  /**
   * Checks the client-final-message: channel binding as announced (else ProtocolError), our nonce, and the proof.
   * `{ ok: false }` means wrong password, unknown user (mock verifier) or a replayed nonce: answer 28P01.
   */
  serverFinal(clientFinalMessage: string | Uint8Array): ScramServerFinalResult {
    const verifier = this.#verifier;
    if (this.#phase !== ServerPhase.FirstSent || verifier === undefined) {
      throw new Error("ScramServer.serverFinal called out of order");
    }
    this.#phase = ServerPhase.Done;
    const what = "client-final-message";
    const text = readMessage(clientFinalMessage, what);
    const parts = text.split(",");
    const proofPart = parts.length >= 3 ? parts[parts.length - 1] : undefined;
    const proof = decodeBase64(attribute(proofPart, "p", what));
    const cbind = decodeBase64(attribute(parts[0], "c", what));
    const nonce = attribute(parts[1], "r", what);
    checkExtensions(parts.slice(2, -1), what);
    if (proof === null || proof.length !== KEY_BYTES) throw malformed(what, "proof is not a base64 SHA-256 value");
    if (cbind === null) throw malformed(what, "channel binding is not base64");
    const binding = this.#gs2Header.startsWith("p=") ? this.#channelBinding?.data : undefined;
    if (!cbind.equals(channelBindingInput(this.#gs2Header, binding))) {
      throw new ProtocolError("SCRAM channel binding check failed");
    }

    const withoutProof = text.slice(0, text.length - (proofPart?.length ?? 0) - 1);
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(verifier.storedKey, authMessage));
    // Both checks run whatever the nonce says, so a failure costs the same time for every reason.
    const proofMatches = timingSafeEqual(sha256(clientKey), verifier.storedKey);
    const nonceMatches = nonce === this.#nonce;
    if (!proofMatches || !nonceMatches) return { ok: false };
    return { ok: true, serverFinalMessage: `v=${hmac(verifier.serverKey, authMessage).toString("base64")}`, clientKey };
  }

  #checkChannelBindingFlag(flag: string, what: string): void {
    const plus = this.#mechanism === ScramMechanism.ScramSha256Plus;
    if (flag === "n" || flag === "y") {
      if (plus) throw new ProtocolError("SCRAM-SHA-256-PLUS was chosen but the client does not bind the channel");
      // "y": the client could bind but believes we cannot, yet we offered -PLUS: someone removed it on the way.
      if (flag === "y" && this.#channelBinding !== undefined) {
        throw new ProtocolError("SCRAM channel binding negotiation error: the server does support channel binding");
      }
      return;
    }
    if (!flag.startsWith("p=") || !CB_NAME.test(flag.slice(2))) throw malformed(what, "invalid channel binding flag");
    if (!plus) throw new ProtocolError("SCRAM-SHA-256 was chosen but the client asks for channel binding");
    if (flag.slice(2) !== this.#channelBinding?.type) {
      throw new ProtocolError(`unsupported SCRAM channel binding type "${flag.slice(2)}"`);
    }
  }
}
