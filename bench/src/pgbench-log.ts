/**
 * pgbench's per-transaction logs (`--log --log-prefix=P`: one file P.<pid> for the first thread and
 * P.<pid>.<n> for the others), one line per transaction:
 *
 *   client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
 *
 * `time` is the transaction's latency in microseconds, or "failed" / "skipped". Mean and p99 latency are
 * computed from every logged transaction: pgbench's own report has the mean but no percentiles.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { mean, percentileInPlace } from "./stats.js";

export interface LatencySummary {
  readonly transactions: number;
  readonly failed: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** Reads and deletes the log files written with `prefix`. */
export async function readLatencyLogs(prefix: string): Promise<LatencySummary> {
  const dir = dirname(prefix);
  const stem = `${basename(prefix)}.`;
  const files = (await readdir(dir)).filter((name) => name.startsWith(stem)).map((name) => join(dir, name));
  const latencies = new LatencyBuffer();
  let failed = 0;
  for (const file of files) {
    failed += parseLog(await readFile(file), latencies);
    await rm(file, { force: true });
  }
  const count = latencies.length;
  const values = latencies.values;
  const meanUs = mean(values, count);
  const p99Us = percentileInPlace(values, count, 99);
  // percentileInPlace sorted the values: the median and the maximum are now read directly.
  const p50Us = count > 0 ? values[Math.max(0, Math.ceil(count / 2) - 1)]! : Number.NaN;
  const maxUs = count > 0 ? values[count - 1]! : Number.NaN;
  return {
    transactions: count,
    failed,
    meanMs: meanUs / 1000,
    p50Ms: p50Us / 1000,
    p99Ms: p99Us / 1000,
    maxMs: maxUs / 1000,
  };
}

/** Appends each line's latency; returns the number of lines whose time is not a number (failed, skipped). */
export function parseLog(bytes: Buffer, into: LatencyBuffer): number {
  let failed = 0;
  let pos = 0;
  const end = bytes.length;
  while (pos < end) {
    let lineEnd = bytes.indexOf(NEWLINE, pos);
    if (lineEnd === -1) lineEnd = end;
    // Skip the first two fields (client_id, transaction_no).
    let field = pos;
    for (let skipped = 0; skipped < 2 && field < lineEnd; field++) {
      if (bytes[field] === SPACE) skipped++;
    }
    if (field < lineEnd) {
      let value = 0;
      let digits = 0;
      let c = bytes[field]!;
      while (c >= DIGIT_0 && c <= DIGIT_9) {
        value = value * 10 + (c - DIGIT_0);
        digits++;
        c = bytes[field + digits]!;
      }
      if (digits > 0 && c === SPACE) into.push(value);
      else failed++;
    }
    pos = lineEnd + 1;
  }
  return failed;
}

/** A growable Float64Array: a million latencies without a million-element JS array. */
export class LatencyBuffer {
  values = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }
}
