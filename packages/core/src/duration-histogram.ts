/**
 * Fixed-bucket histograms of durations, kept by the engine and read by the admin side at scrape time.
 *
 * `observe()` is meant for the hot path (once per query): a short scan over a preallocated bound table and
 * three additions into preallocated arrays. No allocation, no closure, no call into anything else. The
 * buckets are Prometheus-style upper bounds in seconds; the engine's clock is milliseconds, so the bounds
 * are kept in milliseconds too and nothing is converted per observation.
 */

/** Upper bounds, in seconds, from 100 µs (a pooled SELECT on a local socket) to 5 minutes. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/** A histogram as Prometheus exposes it: cumulative counts per upper bound, then +Inf (= count). */
export interface HistogramSnapshot {
  /** Upper bounds in seconds, ascending. The +Inf bucket is implicit: its cumulative count is `count`. */
  readonly boundsSeconds: readonly number[];
  /** Cumulative count per bound: observations less than or equal to `boundsSeconds[i]`. */
  readonly cumulative: readonly number[];
  readonly count: number;
  readonly sumSeconds: number;
}

export class DurationHistogram {
  readonly boundsSeconds: readonly number[];
  private readonly boundsMs: Float64Array;
  /** Per bucket, not cumulative; the last slot is the +Inf bucket. */
  private readonly counts: Float64Array;
  /** Observations so far. */
  count = 0;
  /** Sum of the observed durations, in milliseconds. */
  sumMs = 0;

  constructor(boundsSeconds: readonly number[] = DURATION_BUCKETS_SECONDS) {
    for (let i = 1; i < boundsSeconds.length; i++) {
      if (!(boundsSeconds[i]! > boundsSeconds[i - 1]!)) throw new RangeError("histogram bounds must ascend");
    }
    this.boundsSeconds = [...boundsSeconds];
    this.boundsMs = Float64Array.from(boundsSeconds, (s) => s * 1000);
    this.counts = new Float64Array(boundsSeconds.length + 1);
  }

  /** Records one duration in milliseconds; a negative or NaN duration counts as 0. */
  observe(ms: number): void {
    let v = ms;
    if (!(v > 0)) v = 0; // also NaN
    const bounds = this.boundsMs;
    const n = bounds.length;
    let i = 0;
    while (i < n && v > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.count++;
    this.sumMs += v;
  }

  snapshot(): HistogramSnapshot {
    const cumulative = new Array<number>(this.boundsSeconds.length);
    let running = 0;
    for (let i = 0; i < cumulative.length; i++) {
      running += this.counts[i]!;
      cumulative[i] = running;
    }
    return { boundsSeconds: this.boundsSeconds, cumulative, count: this.count, sumSeconds: this.sumMs / 1000 };
  }
}

/**
 * The three durations a pool measures: how long clients waited for a server, how long transactions held
 * one, and how long each query took (from the request to its ReadyForQuery).
 */
export class PoolHistograms {
  readonly wait = new DurationHistogram();
  readonly transaction = new DurationHistogram();
  readonly query = new DurationHistogram();
}
