/**
 * A bare PostgreSQL client on a raw socket, for what pg or psql are too heavy for: holding tens of thousands
 * of logged-in idle connections, counting logins per second, and reading a gigabyte without keeping it.
 * It logs in (trust, cleartext or SCRAM-SHA-256 via @pgmux/protocol's ScramClient), then hands the socket
 * over at the first ReadyForQuery.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import {
  BackendMessageType,
  decodeBackendMessage,
  deriveScramKeys,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupMessage,
  FrameReader,
  ProtocolVersion,
  ScramClient,
  type ScramKeys,
} from "@pgmux/protocol";

export interface LoginTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

const MAX_MESSAGE_BYTES = 1 << 20;

/**
 * SCRAM keys by salt and iteration count, so a client that logs in 50,000 times runs PBKDF2 once per salt
 * the server hands out, not once per login. A server that picks a new salt per login costs a derivation
 * each time; `derivations` counts them (the client's work competes with the pooler's for the same cores).
 */
export class ScramKeyCache {
  derivations = 0;
  readonly #keys = new Map<string, Promise<ScramKeys>>();

  constructor(private readonly password: string) {}

  keysFor(salt: string, iterations: number): Promise<ScramKeys> {
    const key = `${salt}:${iterations}`;
    let keys = this.#keys.get(key);
    if (keys === undefined) {
      this.derivations++;
      keys = deriveScramKeys(this.password, Buffer.from(salt, "base64"), iterations);
      this.#keys.set(key, keys);
      // A server with a fresh salt per login would grow this without bound: keep the latest few.
      if (this.#keys.size > 64) this.#keys.delete(this.#keys.keys().next().value!);
    }
    return keys;
  }
}

export class LoginError extends Error {
  override readonly name = "LoginError";
}

/** Connects and logs in; resolves with the socket, idle, after the first ReadyForQuery. */
export function login(
  target: LoginTarget,
  keys: ScramKeyCache,
  options: { localAddress?: string; timeoutMs?: number } = {},
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    let done = false;
    let nonce = "";
    let scram: ScramClient | null = null;
    const fail = (message: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new LoginError(message));
    };
    const timer = setTimeout(() => fail("login timed out"), options.timeoutMs ?? 60_000);

    const onFrame = (type: number, buf: Buffer, start: number, end: number) => {
      if (done) return;
      if (type === BackendMessageType.ReadyForQuery) {
        done = true;
        clearTimeout(timer);
        reader.stop();
        socket.off("data", onData);
        socket.off("close", onClose);
        resolve(socket);
        return;
      }
      if (type === BackendMessageType.ErrorResponse) {
        const m = decodeBackendMessage(type, buf, start, end);
        fail(m.type === "ErrorResponse" ? `${m.fields.get("C")}: ${m.fields.get("M")}` : "error");
        return;
      }
      if (type !== BackendMessageType.Authentication) return;
      const m = decodeBackendMessage(type, buf, start, end);
      switch (m.type) {
        case "AuthenticationOk":
          return;
        case "AuthenticationCleartextPassword":
          socket.write(encodePasswordMessage({ password: target.password }));
          return;
        case "AuthenticationSASL": {
          nonce = randomBytes(18).toString("base64");
          const first = new ScramClient({ credentials: { password: target.password }, nonce });
          socket.write(
            encodeSASLInitialResponse({ mechanism: first.mechanism, data: Buffer.from(first.clientFirst()) }),
          );
          return;
        }
        case "AuthenticationSASLContinue": {
          const serverFirst = Buffer.from(m.data);
          const text = serverFirst.toString("utf8");
          const salt = /(?:^|,)s=([^,]*)/.exec(text)?.[1];
          const iterations = Number(/(?:^|,)i=(\d+)/.exec(text)?.[1]);
          if (salt === undefined || !(iterations > 0)) {
            fail("malformed SCRAM server-first-message");
            return;
          }
          keys
            .keysFor(salt, iterations)
            .then(async (derived) => {
              // The same nonce and user give the same client-first-message, now with the cached keys.
              scram = new ScramClient({ credentials: derived, nonce });
              scram.clientFirst();
              const final = await scram.clientFinal(serverFirst);
              if (!done) socket.write(encodeSASLResponse({ data: Buffer.from(final) }));
            })
            .catch((error: unknown) => fail(`SCRAM: ${error instanceof Error ? error.message : String(error)}`));
          return;
        }
        case "AuthenticationSASLFinal":
          try {
            scram?.verifyServerFinal(m.data);
          } catch (error) {
            fail(`SCRAM: ${error instanceof Error ? error.message : String(error)}`);
          }
          return;
        default:
          fail(`unsupported authentication request ${m.type}`);
      }
    };
    const reader = new FrameReader(onFrame, { maxMessageBytes: MAX_MESSAGE_BYTES });
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        fail(error instanceof Error ? error.message : String(error));
      }
    };
    const onClose = () => fail("connection closed during login");
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.on("error", (error) => fail(error.message));
    socket.once("connect", () => {
      socket.write(
        encodeStartupMessage({
          protocolVersion: ProtocolVersion.V3_0,
          parameters: [
            ["user", target.user],
            ["database", target.database],
          ],
        }),
      );
    });
  });
}
