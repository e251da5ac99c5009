/**
 * Framing micro-benchmark: how fast the codec cuts a recorded PostgreSQL server stream (~100k DataRows,
 * captured by test/scripts/capture-goldens.ts) into messages, next to node-postgres' pg-protocol parser on
 * the same bytes, in one process, rounds interleaved so that machine noise falls on all of them alike.
 *
 *   pnpm bench:codec [-- --rounds 7 --seconds 1 --chunk 65536]
 *
 * pg-protocol always decodes each message into an object; "FrameReader" only frames (what the pooler does
 * on its hot path); "FrameReader + decode" also decodes every message, the fair match for pg-protocol.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { decodeBackendMessage, FrameReader } from "@pgmux/protocol";
import { Parser } from "pg-protocol/dist/parser.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "7" },
    seconds: { type: "string", default: "1" },
    chunk: { type: "string", default: "65536" },
  },
});
const rounds = Number(values.rounds);
const secondsPerRun = Number(values.seconds);
const chunkSize = Number(values.chunk);

const fixture = fileURLToPath(new URL("../../packages/protocol/fixtures/datarows.bin", import.meta.url));
const stream = readFileSync(fixture);
// Socket-sized chunks, as a server connection would deliver them; the cuts fall inside messages.
const chunks: Buffer[] = [];
for (let i = 0; i < stream.length; i += chunkSize) chunks.push(stream.subarray(i, i + chunkSize));

type Pass = () => number;

const framingOnly: Pass = () => {
  let messages = 0;
  const reader = new FrameReader(
    () => {
      messages++;
    },
    { maxMessageBytes: 1 << 30 },
  );
  for (const c of chunks) reader.push(c);
  return messages;
};

const framingAndDecode: Pass = () => {
  let messages = 0;
  const reader = new FrameReader(
    (type, buf, start, end) => {
      decodeBackendMessage(type, buf, start, end);
      messages++;
    },
    { maxMessageBytes: 1 << 30 },
  );
  for (const c of chunks) reader.push(c);
  return messages;
};

const pgProtocol: Pass = () => {
  let messages = 0;
  const parser = new Parser();
  for (const c of chunks) {
    parser.parse(c, () => {
      messages++;
    });
  }
  return messages;
};

const passes: Record<string, Pass> = {
  "FrameReader (framing only)": framingOnly,
  "FrameReader + decodeBackendMessage": framingAndDecode,
  "pg-protocol Parser": pgProtocol,
};

interface Sample {
  messagesPerSecond: number;
  megabytesPerSecond: number;
}

function measure(pass: Pass): Sample {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(secondsPerRun * 1e9));
  let messages = 0;
  let bytes = 0;
  const start = process.hrtime.bigint();
  let now = start;
  while (now < deadline) {
    messages += pass();
    bytes += stream.length;
    now = process.hrtime.bigint();
  }
  const seconds = Number(now - start) / 1e9;
  return { messagesPerSecond: messages / seconds, megabytesPerSecond: bytes / 1e6 / seconds };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const counts = new Set(Object.values(passes).map((p) => p()));
if (counts.size !== 1) throw new Error(`the parsers disagree on the message count: ${[...counts].join(", ")}`);
const messageCount = [...counts][0]!;

const samples = new Map<string, Sample[]>(Object.keys(passes).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, pass] of Object.entries(passes)) samples.get(name)!.push(measure(pass));
}

const baseline = median(samples.get("pg-protocol Parser")!.map((s) => s.megabytesPerSecond));
console.log(
  `\nFraming benchmark: ${(stream.length / 1e6).toFixed(1)} MB recorded server stream, ${messageCount} messages, ` +
    `${chunks.length} chunks of ${chunkSize} bytes; ${rounds} interleaved rounds of ${secondsPerRun} s; ` +
    `Node ${process.version}\n`,
);
console.log("| parser | messages/s (median) | MB/s (median) | vs pg-protocol |");
console.log("| --- | ---: | ---: | ---: |");
for (const [name, list] of samples) {
  const mps = median(list.map((s) => s.messagesPerSecond));
  const mbps = median(list.map((s) => s.megabytesPerSecond));
  console.log(
    `| ${name} | ${Math.round(mps).toLocaleString("en-US")} | ${mbps.toFixed(1)} | ${(mbps / baseline).toFixed(2)}× |`,
  );
}
