import { describe, expect, test } from "vitest";
import { mergeMetrics } from "./metrics-merge.js";

const worker = (clients: number, ready: number, wait: number, rss: number) =>
  [
    "# HELP pgmux_clients Client connections by state",
    "# TYPE pgmux_clients gauge",
    `pgmux_clients{state="active"} ${clients}`,
    "# HELP pgmux_ready 1 when ready",
    "# TYPE pgmux_ready gauge",
    `pgmux_ready ${ready}`,
    "# HELP pgmux_pool_max_wait_seconds oldest wait",
    "# TYPE pgmux_pool_max_wait_seconds gauge",
    `pgmux_pool_max_wait_seconds{database="app",user="u"} ${wait}`,
    "# HELP pgmux_query_duration_seconds queries",
    "# TYPE pgmux_query_duration_seconds histogram",
    `pgmux_query_duration_seconds_bucket{le="0.1",database="app",user="u"} ${clients}`,
    `pgmux_query_duration_seconds_bucket{le="+Inf",database="app",user="u"} ${clients * 2}`,
    `pgmux_query_duration_seconds_sum{database="app",user="u"} 0.5`,
    `pgmux_query_duration_seconds_count{database="app",user="u"} ${clients * 2}`,
    "# HELP process_resident_memory_bytes rss",
    "# TYPE process_resident_memory_bytes gauge",
    `process_resident_memory_bytes ${rss}`,
    "",
  ].join("\n");

describe("merging the workers' /metrics", () => {
  test("sums counters, gauges and histograms; min for readiness, max for the oldest wait; per-worker process metrics", () => {
    const merged = mergeMetrics([worker(3, 1, 0.5, 100), worker(4, 0, 2, 200)]);
    expect(merged).toBe(
      [
        "# HELP pgmux_clients Client connections by state",
        "# TYPE pgmux_clients gauge",
        'pgmux_clients{state="active"} 7',
        "# HELP pgmux_ready 1 when ready",
        "# TYPE pgmux_ready gauge",
        "pgmux_ready 0",
        "# HELP pgmux_pool_max_wait_seconds oldest wait",
        "# TYPE pgmux_pool_max_wait_seconds gauge",
        'pgmux_pool_max_wait_seconds{database="app",user="u"} 2',
        "# HELP pgmux_query_duration_seconds queries",
        "# TYPE pgmux_query_duration_seconds histogram",
        'pgmux_query_duration_seconds_bucket{le="0.1",database="app",user="u"} 7',
        'pgmux_query_duration_seconds_bucket{le="+Inf",database="app",user="u"} 14',
        'pgmux_query_duration_seconds_sum{database="app",user="u"} 1',
        'pgmux_query_duration_seconds_count{database="app",user="u"} 14',
        "# HELP process_resident_memory_bytes rss",
        "# TYPE process_resident_memory_bytes gauge",
        'process_resident_memory_bytes{worker="0"} 100',
        'process_resident_memory_bytes{worker="1"} 200',
        "",
      ].join("\n"),
    );
  });
});
