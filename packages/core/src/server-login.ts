import {
  type BackendMessage,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  isMd5Secret,
  md5Response,
  parseScramVerifier,
  ScramClient,
  type ScramKeys,
} from "@pgmux/protocol";

export type { ScramKeys };

const SCRAM = "SCRAM-SHA-256";

/**
 * pgmux's side of a server's authentication exchange: answers each Authentication request with what the
 * pool holds for its user — a plaintext password (any method), an MD5 secret (md5 only), or a SCRAM verifier
 * together with the ClientKey a client proved when it logged in to pgmux (SCRAM without any plaintext).
 */
export class ServerLogin {
  private scram: ScramClient | null = null;

  constructor(
    private readonly user: string,
    private readonly secret: string | undefined,
    private readonly clientKeys: ScramKeys | null,
  ) {}

  /** The reply to an Authentication message; null when none is due. Throws with a reason when it cannot. */
  respond(msg: BackendMessage): Buffer | Promise<Buffer> | null {
    switch (msg.type) {
      case "AuthenticationOk":
        return null;
      case "AuthenticationCleartextPassword":
        return encodePasswordMessage({ password: this.plaintext("password") });
      case "AuthenticationMD5Password": {
        const secret = this.secret;
        if (secret === undefined || parseScramVerifier(secret) !== null) throw this.missing("md5");
        return encodePasswordMessage({ password: md5Response(secret, this.user, msg.salt) });
      }
      case "AuthenticationSASL": {
        if (!msg.mechanisms.includes(SCRAM)) {
          throw new Error(
            `the server offers only SASL mechanisms pgmux does not support: ${msg.mechanisms.join(", ")}`,
          );
        }
        this.scram = new ScramClient({ credentials: this.scramCredentials() });
        return encodeSASLInitialResponse({ mechanism: SCRAM, data: Buffer.from(this.scram.clientFirst()) });
      }
      case "AuthenticationSASLContinue": {
        const scram = this.expectScram();
        return scram.clientFinal(msg.data).then((final) => encodeSASLResponse({ data: Buffer.from(final) }));
      }
      case "AuthenticationSASLFinal":
        this.expectScram().verifyServerFinal(msg.data);
        return null;
      default:
        throw new Error(`the server asks for ${msg.type}, which pgmux does not support`);
    }
  }

  private expectScram(): ScramClient {
    if (this.scram === null) throw new Error("the server sent a SASL step out of order");
    return this.scram;
  }

  private scramCredentials(): { password: string } | { clientKey: Uint8Array; serverKey: Uint8Array } {
    const secret = this.secret;
    if (secret !== undefined && parseScramVerifier(secret) !== null) {
      if (this.clientKeys === null) {
        throw new Error(
          "pgmux holds only a SCRAM verifier for this user; the first login must come from a client using SCRAM",
        );
      }
      return { clientKey: this.clientKeys.clientKey, serverKey: this.clientKeys.serverKey };
    }
    return { password: this.plaintext("scram-sha-256") };
  }

  private plaintext(method: string): string {
    const secret = this.secret;
    if (secret === undefined || isMd5Secret(secret) || parseScramVerifier(secret) !== null) throw this.missing(method);
    return secret;
  }

  private missing(method: string): Error {
    return new Error(
      `the server asks for ${method} authentication and pgmux has no usable password for user "${this.user}" ` +
        "(set password= in the [databases] entry, or a plaintext password in the auth_file)",
    );
  }
}
