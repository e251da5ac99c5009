import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  decodeFrontendMessage,
  deriveScramKeys,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMD5Password,
  encodeAuthenticationSASL,
  encodeAuthenticationSASLContinue,
  encodeAuthenticationSASLFinal,
  FrontendMessageType,
  isMd5Secret,
  md5Secret,
  mockScramVerifier,
  type PasswordKind,
  ProtocolError,
  parseScramVerifier,
  ScramServer,
  type ScramVerifier,
  verifyMd5Response,
} from "@pgmux/protocol";
import type { ClientSession } from "./client-session.js";
import type { PoolerSettings } from "./pooler-settings.js";
import type { ScramKeys } from "./server-login.js";

const SCRAM = "SCRAM-SHA-256";
type Step = "cleartext" | "md5" | "sasl-initial" | "sasl-final" | "done";

/**
 * Authenticates a client against the auth_file before any server is touched. An unknown user runs through
 * the same exchange as a known one (a per-process mock secret stands in for theirs) and gets the same 28P01,
 * so neither the answer nor the work done tells the two apart.
 */
export class ClientAuth {
  private step: Step = "done";
  private md5Salt: Buffer = Buffer.alloc(0);
  private scram: ScramServer | null = null;
  private verifier: ScramVerifier | null = null;
  private readonly secret: string | undefined;

  constructor(
    private readonly client: ClientSession,
    private readonly settings: PoolerSettings,
    private readonly done: (scramKeys: ScramKeys | null) => void,
    private readonly verifiers: VerifierCache,
  ) {
    this.secret = settings.users.get(client.user);
  }

  begin(): void {
    const method = this.settings.authType;
    const secret = this.secret;
    if (method === "any") {
      this.done(null);
      return;
    }
    if (method === "trust") {
      // As in PgBouncer: no password, but when a user list exists the user must be on it.
      if (this.settings.users.size > 0 && secret === undefined) this.reject("unknown user");
      else this.done(null);
      return;
    }
    if (method === "plain") {
      this.step = "cleartext";
      this.client.socket.write(encodeAuthenticationCleartextPassword());
      return;
    }
    const useScram = method === "scram-sha-256" || (secret !== undefined && parseScramVerifier(secret) !== null);
    if (useScram) {
      this.step = "sasl-initial";
      this.client.socket.write(encodeAuthenticationSASL({ mechanisms: [SCRAM] }));
      return;
    }
    this.step = "md5";
    this.md5Salt = randomBytes(4);
    this.client.socket.write(encodeAuthenticationMD5Password({ salt: this.md5Salt }));
  }

  onMessage(type: number, buf: Buffer, start: number, end: number): void {
    if (type !== FrontendMessageType.PasswordMessage || this.step === "done") {
      throw new ProtocolError(`expected a password message during authentication, got type ${type}`);
    }
    const kind: PasswordKind =
      this.step === "sasl-initial" ? "sasl-initial" : this.step === "sasl-final" ? "sasl" : "password";
    const msg = decodeFrontendMessage(type, buf, start, end, kind);
    switch (msg.type) {
      case "PasswordMessage":
        if (this.step === "md5") {
          this.checkMd5(msg.password);
          return;
        }
        this.checkCleartext(msg.password).then(
          (ok) => (ok ? this.done(null) : this.reject("wrong password")),
          () => this.reject("password check failed"),
        );
        return;
      case "SASLInitialResponse":
        if (msg.mechanism !== SCRAM || msg.data === null) {
          throw new ProtocolError(`unsupported SASL mechanism "${msg.mechanism}" (pgmux offers ${SCRAM})`);
        }
        void this.scramFirst(msg.data);
        return;
      case "SASLResponse":
        this.scramFinal(msg.data);
        return;
      default:
        throw new ProtocolError(`unexpected ${msg.type} during authentication`);
    }
  }

  private checkMd5(response: string): void {
    this.step = "done";
    const secret = this.secret ?? this.verifiers.mockMd5Secret(this.client.user);
    const ok = verifyMd5Response(secret, this.client.user, this.md5Salt, response) && this.secret !== undefined;
    if (ok) this.done(null);
    else this.reject(this.secret === undefined ? "unknown user" : "wrong password");
  }

  private async checkCleartext(password: string): Promise<boolean> {
    this.step = "done";
    const secret = this.secret;
    if (secret === undefined) {
      await this.verifiers.verifierFor(this.client.user, undefined);
      return false;
    }
    const verifier = parseScramVerifier(secret);
    if (verifier !== null) {
      const keys = await deriveScramKeys(password, verifier.salt, verifier.iterations);
      return timingSafeEqual(createSha256(keys.clientKey), verifier.storedKey);
    }
    const expected = Buffer.from(isMd5Secret(secret) ? secret : md5Secret(this.client.user, secret));
    const actual = Buffer.from(md5Secret(this.client.user, password));
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  private async scramFirst(data: Buffer): Promise<void> {
    this.step = "sasl-final";
    try {
      this.verifier = await this.verifiers.verifierFor(this.client.user, this.secret);
      this.scram = new ScramServer();
      const first = this.scram.serverFirst(data, this.verifier);
      this.client.socket.write(encodeAuthenticationSASLContinue({ data: Buffer.from(first) }));
    } catch (err) {
      this.client.fail("protocol_violation", { reason: err instanceof Error ? err.message : String(err) });
    }
  }

  private scramFinal(data: Buffer): void {
    if (this.scram === null || this.verifier === null) throw new ProtocolError("SASL response out of order");
    this.step = "done";
    const result = this.scram.serverFinal(data);
    if (!result.ok || this.secret === undefined) {
      this.reject(this.secret === undefined ? "unknown user" : "wrong password");
      return;
    }
    this.client.socket.write(encodeAuthenticationSASLFinal({ data: Buffer.from(result.serverFinalMessage) }));
    const fromVerifier = parseScramVerifier(this.secret) !== null;
    this.done(fromVerifier ? { clientKey: result.clientKey, serverKey: this.verifier.serverKey } : null);
  }

  private reject(reason: string): void {
    this.step = "done";
    this.client.log.warn({ reason }, "client authentication failed");
    this.client.fail("auth_failed", { user: this.client.user });
  }
}

/**
 * SCRAM verifiers for users whose auth_file secret is a plaintext password (derived once, off the event
 * loop) and mock ones for unknown users; the per-process mock secret also stands in for MD5.
 */
export class VerifierCache {
  private readonly derived = new Map<string, Promise<ScramVerifier>>();
  private readonly mockSecret = randomBytes(32);

  async verifierFor(user: string, secret: string | undefined): Promise<ScramVerifier> {
    if (secret === undefined || isMd5Secret(secret)) return mockScramVerifier(user, this.mockSecret);
    const parsed = parseScramVerifier(secret);
    if (parsed !== null) return parsed;
    const key = `${user}\0${secret}`;
    let pending = this.derived.get(key);
    if (pending === undefined) {
      const salt = randomBytes(16);
      pending = deriveScramKeys(secret, salt, 4096).then((keys) => ({
        iterations: 4096,
        salt,
        storedKey: createSha256(keys.clientKey),
        serverKey: keys.serverKey,
      }));
      this.derived.set(key, pending);
    }
    return pending;
  }

  mockMd5Secret(user: string): string {
    return md5Secret(user, this.mockSecret.toString("hex"));
  }
}

function createSha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}
