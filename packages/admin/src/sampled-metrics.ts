/**
 * prom-client metrics whose values are read at scrape time from the engine's plain counters and snapshots,
 * never incremented by the engine: each scrape asks `read()` for the samples. They are real prom-client
 * Counter/Gauge/Histogram instances (so the registry types, formats and lints them as usual), whose `get()`
 * returns the samples read instead of values accumulated in the process.
 */
import type { HistogramSnapshot } from "@pgmux/core";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export type Labels = Readonly<Record<string, string | number>>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

export interface HistogramSample {
  readonly labels: Labels;
  readonly histogram: HistogramSnapshot;
}

interface SampledConfig {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

export class SampledCounter extends Counter<string> {
  constructor(
    registry: Registry,
    config: SampledConfig,
    private readonly read: () => Iterable<Sample>,
  ) {
    super({ name: config.name, help: config.help, labelNames: [...(config.labelNames ?? [])], registers: [registry] });
  }

  override async get() {
    const base = await super.get();
    return { ...base, values: toValues(this.read()) };
  }
}

export class SampledGauge extends Gauge<string> {
  constructor(
    registry: Registry,
    config: SampledConfig,
    private readonly read: () => Iterable<Sample>,
  ) {
    super({ name: config.name, help: config.help, labelNames: [...(config.labelNames ?? [])], registers: [registry] });
  }

  override async get() {
    const base = await super.get();
    return { ...base, values: toValues(this.read()) };
  }
}

/** A histogram whose buckets come from core's DurationHistogram snapshots (bounds in seconds). */
export class SampledHistogram extends Histogram<string> {
  private readonly config: SampledConfig;

  constructor(
    registry: Registry,
    config: SampledConfig,
    private readonly read: () => Iterable<HistogramSample>,
  ) {
    super({ name: config.name, help: config.help, labelNames: [...(config.labelNames ?? [])], registers: [registry] });
    this.config = config;
  }

  /**
   * prom-client's registry prints a histogram from this method (its own, absent from its type
   * declarations), and Histogram.get() builds on it: both see the samples read now.
   */
  async getForPromString() {
    return {
      name: this.config.name,
      help: this.config.help,
      type: "histogram",
      values: this.samples(),
      aggregator: "sum",
    };
  }

  private samples() {
    const name = this.config.name;
    const out: { metricName: string; labels: Record<string, string | number>; sharedLabels: Labels; value: number }[] =
      [];
    for (const { labels, histogram: h } of this.read()) {
      for (let i = 0; i < h.boundsSeconds.length; i++) {
        out.push({
          metricName: `${name}_bucket`,
          labels: { ...labels, le: h.boundsSeconds[i]! },
          sharedLabels: {},
          value: h.cumulative[i]!,
        });
      }
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, sharedLabels: {}, value: h.count });
      out.push({ metricName: `${name}_sum`, labels: { ...labels }, sharedLabels: {}, value: h.sumSeconds });
      out.push({ metricName: `${name}_count`, labels: { ...labels }, sharedLabels: {}, value: h.count });
    }
    return out;
  }
}

function toValues(samples: Iterable<Sample>): { labels: Labels; value: number }[] {
  const out: { labels: Labels; value: number }[] = [];
  for (const s of samples) out.push({ labels: s.labels, value: s.value });
  return out;
}
