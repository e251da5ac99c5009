import { createHash } from "node:crypto";
import net from "node:net";
import { decodeBackendMessage, encodeQuery, encodeStartupMessage, ProtocolVersion } from "@pgmux/protocol";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Server sockets read into a reused buffer (read-buffers.ts). A client that stops reading makes pgmux's
 * writes to it queue up, still pointing into that buffer: if the buffer were reused regardless, the bytes
 * the client finally gets would be overwritten by later reads. Every row here carries its own checksum.
 */

let server: TestPostgres;
let instance: PoolerInstance;

beforeAll(async () => {
  server = await testPostgres();
  instance = await startPooler({ postgres: server, settings: { authType: "trust", defaultPoolSize: 2 } });
});
afterAll(async () => {
  await instance.stop();
});

test("a client that stalls mid-result still receives every byte as the server sent it", async () => {
  const rows = 150_000;
  const socket = net.connect({ host: instance.host, port: instance.port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.write(
    encodeStartupMessage({
      protocolVersion: ProtocolVersion.V3_0,
      parameters: [
        ["user", server.user],
        ["database", server.database],
      ],
    }),
  );
  await waitUntil("login", () => Buffer.concat(chunks).includes(Buffer.from([0x5a, 0, 0, 0, 5, 0x49])), {
    timeoutMs: 5000,
  });
  chunks.length = 0;
  socket.write(encodeQuery({ query: `select i, md5(i::text) from generate_series(1, ${rows}) as i` }));
  // Stall: pgmux's writes to this client queue while the server keeps sending.
  socket.pause();
  await waitUntil(
    "pgmux to have queued bytes for the stalled client",
    () => [...instance.pooler.pools.values()].some((p) => [...p.servers].some((s) => s.client !== null)),
    { timeoutMs: 5000 },
  );
  await new Promise((r) => setTimeout(r, 300));
  socket.resume();
  await waitUntil(
    "the whole result",
    () => {
      const all = Buffer.concat(chunks);
      return all.length >= 6 && all.subarray(all.length - 6).equals(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]));
    },
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  socket.destroy();
  const all = Buffer.concat(chunks);
  let pos = 0;
  let seen = 0;
  let bad = 0;
  while (pos < all.length) {
    const length = all.readUInt32BE(pos + 1);
    const msg = decodeBackendMessage(all[pos]!, all, pos + 5, pos + 1 + length);
    if (msg.type === "DataRow") {
      const i = Buffer.from(msg.values[0]!).toString();
      const md5 = Buffer.from(msg.values[1]!).toString();
      if (createHash("md5").update(i).digest("hex") !== md5 || Number(i) !== seen + 1) bad++;
      seen++;
    }
    pos += 1 + length;
  }
  expect(bad).toBe(0);
  expect(seen).toBe(rows);
});
