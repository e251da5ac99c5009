/**
 * Adds up the Prometheus text of several worker processes into one exposition, for the supervisor's
 * /metrics (workers: N): a sample with the same name and labels in several workers becomes one sample.
 * - counters, histograms and most gauges (clients, servers, pool sizes, which workers divide) are summed;
 * - `pgmux_ready` takes the minimum (ready only when every worker is), `pgmux_paused`, `pgmux_info` and
 *   `pgmux_pool_max_wait_seconds` the maximum;
 * - process and Node.js metrics (`process_*`, `nodejs_*`) are per process and would mean nothing summed:
 *   they keep one sample per worker, with a `worker` label.
 */

const MIN = new Set(["pgmux_ready"]);
const MAX = new Set(["pgmux_paused", "pgmux_info", "pgmux_pool_max_wait_seconds"]);
const PER_PROCESS = /^(process_|nodejs_)/;

interface Family {
  readonly name: string;
  readonly header: string[];
  /** Sample key (name + labels) → value, in first-seen order. */
  readonly samples: Map<string, number>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$/;

function withWorker(labels: string | undefined, worker: number): string {
  if (labels === undefined || labels === "{}") return `{worker="${worker}"}`;
  return `${labels.slice(0, -1)},worker="${worker}"}`;
}

function render(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

export function mergeMetrics(texts: readonly string[]): string {
  const families = new Map<string, Family>();
  const familyOf = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, header: [], samples: new Map() };
      families.set(name, f);
    }
    return f;
  };
  texts.forEach((text, worker) => {
    let current: Family | null = null;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta !== null) {
        current = family(meta[2]!);
        if (current.header.length < 2 && !current.header.some((h) => h.startsWith(`# ${meta[1]} `))) {
          current.header.push(line);
        }
        for (const suffix of ["", "_bucket", "_sum", "_count", "_total", "_created"]) {
          familyOf.set(meta[2]! + suffix, current);
        }
        continue;
      }
      if (line.startsWith("#")) continue;
      const m = SAMPLE.exec(line);
      if (m === null) continue;
      const name = m[1]!;
      const f = familyOf.get(name) ?? current ?? family(name);
      const value = Number(
        m[3] === "+Inf" ? Number.POSITIVE_INFINITY : m[3] === "-Inf" ? Number.NEGATIVE_INFINITY : m[3],
      );
      if (PER_PROCESS.test(f.name)) {
        f.samples.set(`${name}${withWorker(m[2], worker)}`, value);
        continue;
      }
      const key = `${name}${m[2] ?? ""}`;
      const previous = f.samples.get(key);
      if (previous === undefined) f.samples.set(key, value);
      else if (MIN.has(f.name)) f.samples.set(key, Math.min(previous, value));
      else if (MAX.has(f.name)) f.samples.set(key, Math.max(previous, value));
      else f.samples.set(key, previous + value);
    }
  });
  const out: string[] = [];
  for (const f of families.values()) {
    out.push(...f.header);
    for (const [key, value] of f.samples) out.push(`${key} ${render(value)}`);
  }
  return `${out.join("\n")}\n`;
}
