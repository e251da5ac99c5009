/**
 * Bulk reads through each target: a `COPY … TO STDOUT` and a plain SELECT of about the same size, read by
 * a raw socket that frames the stream (to find the end) and keeps nothing. MB/s is wire bytes received per
 * second of wall time from sending the Query to its ReadyForQuery (MB = 10^6 bytes). The pooler's peak RSS
 * is VmHWM after a reset just before the query (sampled VmRSS if the reset is not allowed).
 */
import { BackendMessageType, encodeQuery, encodeTerminate, FrameReader } from "@pgmux/protocol";
import { memoryKb, resetPeakRss } from "./proc-stats.js";
import { type LoginTarget, login, type ScramKeyCache } from "./raw-client.js";

export type BulkKind = "copy" | "select";

export interface ThroughputResult {
  readonly target: string;
  readonly kind: BulkKind;
  readonly rep: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly megabytesPerSecond: number;
  readonly poolerRssBeforeKb: number;
  readonly poolerPeakRssKb: number;
  readonly error?: string;
}

const ROW_BYTES = 1000;

/** About `rows` × 1 kB: each row is a 1,000-character text value. */
export function bulkSql(kind: BulkKind, rows: number): string {
  const select = `SELECT repeat('x', ${ROW_BYTES}) FROM generate_series(1, ${rows})`;
  return kind === "copy" ? `COPY (${select}) TO STDOUT` : select;
}

export async function measureThroughput(
  target: { name: string; login: LoginTarget; pid?: number },
  kind: BulkKind,
  rows: number,
  rep: number,
  keys: ScramKeyCache,
): Promise<ThroughputResult> {
  const socket = await login(target.login, keys);
  const pid = target.pid;
  const rssBefore = pid === undefined ? Number.NaN : memoryKb(pid).rssKb;
  const canReset = pid !== undefined && resetPeakRss(pid);
  let sampledPeak = rssBefore;
  const sampler =
    pid !== undefined && !canReset
      ? setInterval(() => {
          sampledPeak = Math.max(sampledPeak, memoryKb(pid).rssKb);
        }, 20)
      : undefined;

  let bytes = 0;
  let error: string | undefined;
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const reader = new FrameReader(
        (type, buf, start, end) => {
          if (type === BackendMessageType.ErrorResponse && error === undefined) {
            error = buf.toString("utf8", start, end).replaceAll("\0", " ").trim();
          }
          if (type === BackendMessageType.ReadyForQuery) resolve();
        },
        { maxMessageBytes: 1 << 24 },
      );
      socket.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        try {
          reader.push(chunk);
        } catch (e) {
          reject(e);
        }
      });
      socket.once("close", () => reject(new Error("connection closed during the bulk read")));
      socket.write(encodeQuery({ query: bulkSql(kind, rows) }));
    });
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
  }
  const seconds = (performance.now() - started) / 1000;
  const peak = pid === undefined ? Number.NaN : canReset ? memoryKb(pid).peakRssKb : sampledPeak;
  socket.removeAllListeners("close");
  socket.end(encodeTerminate());
  return {
    target: target.name,
    kind,
    rep,
    bytes,
    seconds,
    megabytesPerSecond: bytes / 1e6 / seconds,
    poolerRssBeforeKb: rssBefore,
    poolerPeakRssKb: peak,
    ...(error !== undefined ? { error } : {}),
  };
}
