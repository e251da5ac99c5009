import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { encodeBackendMessage } from "./backend-messages.js";
import { TYPED_HEADER_BYTES } from "./constants.js";
import { decodeBackendMessage } from "./decode-backend-message.js";
import { decodeFrontendMessage, decodeStartupFamily, type PasswordKind } from "./decode-frontend-message.js";
import { FrameReader, UNTYPED } from "./frame-reader.js";
import { encodeFrontendMessage } from "./frontend-messages.js";
import { md5Response } from "./md5-password.js";
import { ScramClient } from "./scram.js";

/**
 * Bytes a real PostgreSQL and real clients exchanged (test/scripts/capture-goldens.ts): every frame decodes,
 * re-encodes to the very same bytes, and frames identically however the stream is cut.
 */
interface Session {
  name: string;
  frontend: string;
  backend: string;
  frontendChunks: number[];
  backendChunks: number[];
}

const sessions = JSON.parse(readFileSync(new URL("../fixtures/goldens.json", import.meta.url), "utf8")) as Session[];

interface Frame {
  type: number;
  bytes: Buffer;
}

/** Frames one direction; the frontend starts untyped until its StartupMessage. */
function frames(stream: Buffer, chunks: number[], side: "frontend" | "backend"): Frame[] {
  const out: Frame[] = [];
  const reader: FrameReader = new FrameReader(
    (type, buf, start, end) => {
      // The body may sit in the reader's own buffer (a frame split across chunks): rebuild the whole frame.
      const header = type === UNTYPED ? 4 : TYPED_HEADER_BYTES;
      const bytes = Buffer.alloc(header + end - start);
      if (type !== UNTYPED) bytes[0] = type;
      bytes.writeUInt32BE(end - start + 4, header - 4);
      buf.copy(bytes, header, start, end);
      out.push({ type, bytes });
      // StartupMessage (code 3.x) ends the untyped phase; SSLRequest/GSSENCRequest do not.
      if (type === UNTYPED && buf.readUInt32BE(start) >>> 16 === 3) reader.untyped = false;
    },
    { maxMessageBytes: 1 << 30, untyped: side === "frontend" },
  );
  let pos = 0;
  for (const size of chunks) {
    reader.push(stream.subarray(pos, pos + size));
    pos += size;
  }
  expect(reader.buffered).toBe(0);
  return out;
}

function load(s: Session) {
  const frontend = Buffer.from(s.frontend, "hex");
  let backend = Buffer.from(s.backend, "hex");
  const frontendFrames = frames(frontend, s.frontendChunks, "frontend");
  // A refused SSLRequest is answered by one bare byte, 'N', before the typed stream begins.
  const sslRefused = frontendFrames[0]?.type === UNTYPED && frontendFrames[0].bytes.readUInt32BE(4) === 80877103;
  const backendChunks = [...s.backendChunks];
  if (sslRefused) {
    expect(backend[0]).toBe(0x4e);
    backend = backend.subarray(1);
    backendChunks[0]! -= 1;
  }
  return { frontend, backend, backendChunks, frontendFrames, backendFrames: frames(backend, backendChunks, "backend") };
}

/** Which 'p' kinds the client sent, in order, from the authentication requests the server made. */
function passwordKinds(backendFrames: Frame[]): PasswordKind[] {
  const kinds: PasswordKind[] = [];
  for (const f of backendFrames) {
    if (f.type !== 0x52) continue;
    const code = f.bytes.readUInt32BE(5);
    if (code === 10) kinds.push("sasl-initial");
    else if (code === 11) kinds.push("sasl");
    else if (code === 3 || code === 5) kinds.push("password");
  }
  return kinds;
}

describe("golden bytes from a real PostgreSQL", () => {
  test("the fixture holds the captured sessions", () => {
    expect(sessions.length).toBeGreaterThanOrEqual(10);
  });

  for (const session of sessions) {
    test(`${session.name}: every frame decodes and re-encodes to the same bytes`, () => {
      const { frontendFrames, backendFrames } = load(session);
      const kinds = passwordKinds(backendFrames);
      for (const f of frontendFrames) {
        const body = f.type === UNTYPED ? 4 : TYPED_HEADER_BYTES;
        const msg =
          f.type === UNTYPED
            ? decodeStartupFamily(f.bytes, body, f.bytes.length)
            : decodeFrontendMessage(f.type, f.bytes, body, f.bytes.length, f.type === 0x70 ? kinds.shift() : undefined);
        expect(encodeFrontendMessage(msg).equals(f.bytes), `${msg.type} re-encodes identically`).toBe(true);
      }
      for (const f of backendFrames) {
        const msg = decodeBackendMessage(f.type, f.bytes, TYPED_HEADER_BYTES, f.bytes.length);
        expect(encodeBackendMessage(msg).equals(f.bytes), `${msg.type} re-encodes identically`).toBe(true);
      }
      // Every session ends the way a finished conversation does.
      expect(backendFrames.at(-1)?.type).toBe(0x5a);
      expect(frontendFrames.at(-1)?.type).toBe(0x58);
    });

    test(`${session.name}: cutting either stream at any single byte yields the same frames`, () => {
      const { frontend, backend, frontendFrames, backendFrames } = load(session);
      const expectFront = frontendFrames.map((f) => f.bytes.toString("hex"));
      const expectBack = backendFrames.map((f) => f.bytes.toString("hex"));
      for (let cut = 0; cut <= frontend.length; cut++) {
        const got = frames(frontend, [cut, frontend.length - cut], "frontend").map((f) => f.bytes.toString("hex"));
        expect(got).toEqual(expectFront);
      }
      for (let cut = 0; cut <= backend.length; cut++) {
        const got = frames(backend, [cut, backend.length - cut], "backend").map((f) => f.bytes.toString("hex"));
        expect(got).toEqual(expectBack);
      }
    });
  }

  test("the MD5 answer psql sent is the one md5Response computes from the recorded salt", () => {
    const session = sessions.find((s) => s.name === "psql-md5-session")!;
    const { frontendFrames, backendFrames } = load(session);
    const challenge = backendFrames.find((f) => f.type === 0x52 && f.bytes.readUInt32BE(5) === 5)!;
    const salt = challenge.bytes.subarray(9, 13);
    const answer = frontendFrames.find((f) => f.type === 0x70)!;
    const password = answer.bytes.toString("utf8", 5, answer.bytes.length - 1);
    expect(password).toBe(md5Response("golden-md5-password", "golden_md5", salt));
  });

  test("the SCRAM proof pg sent is the one ScramClient computes from the recorded server-first message", async () => {
    const session = sessions.find((s) => s.name === "pg-scram-startup")!;
    const { frontendFrames, backendFrames } = load(session);
    const [initial, final] = frontendFrames.filter((f) => f.type === 0x70);
    const first = decodeFrontendMessage(0x70, initial!.bytes, 5, initial!.bytes.length, "sasl-initial");
    if (first.type !== "SASLInitialResponse" || first.data === null) throw new Error("no SASLInitialResponse");
    const clientNonce = /r=([^,]+)/.exec(first.data.toString("utf8"))![1]!;
    const serverFirst = backendFrames.find((f) => f.type === 0x52 && f.bytes.readUInt32BE(5) === 11)!;
    const client = new ScramClient({
      credentials: { password: "golden-scram-password" },
      nonce: clientNonce,
      username: "*",
    });
    expect(client.clientFirst()).toBe(first.data.toString("utf8"));
    const clientFinal = await client.clientFinal(serverFirst.bytes.subarray(9));
    expect(clientFinal).toBe(final!.bytes.toString("utf8", 5));
    const serverFinal = backendFrames.find((f) => f.type === 0x52 && f.bytes.readUInt32BE(5) === 12)!;
    expect(() => client.verifyServerFinal(serverFinal.bytes.subarray(9))).not.toThrow();
  });

  test("the recorded 100k-row server stream frames into DataRows that all decode", () => {
    const stream = readFileSync(new URL("../fixtures/datarows.bin", import.meta.url));
    const counts = new Map<string, number>();
    const reader = new FrameReader(
      (type, buf, start, end) => {
        const msg = decodeBackendMessage(type, buf, start, end);
        counts.set(msg.type, (counts.get(msg.type) ?? 0) + 1);
      },
      { maxMessageBytes: 1 << 30 },
    );
    for (let i = 0; i < stream.length; i += 65536) reader.push(stream.subarray(i, i + 65536));
    expect(reader.buffered).toBe(0);
    expect(counts.get("DataRow")).toBe(100_000);
    expect(counts.get("ReadyForQuery")).toBeGreaterThanOrEqual(1);
  });
});
