import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { DurationHistogram } from "./duration-histogram.js";

describe("DurationHistogram", () => {
  test("an observation lands in the first bucket whose bound is at least its duration", () => {
    const h = new DurationHistogram([0.001, 0.01, 0.1]);
    h.observe(1); // exactly 1 ms: le="0.001"
    h.observe(1.5);
    h.observe(10);
    h.observe(250); // beyond the last bound: only +Inf
    const s = h.snapshot();
    expect(s.cumulative).toEqual([1, 3, 3]);
    expect(s.count).toBe(4);
    expect(s.sumSeconds).toBeCloseTo(0.2625, 10);
  });

  test("negative and NaN durations count as zero", () => {
    const h = new DurationHistogram([0.001]);
    h.observe(-5);
    h.observe(Number.NaN);
    expect(h.snapshot()).toEqual({ boundsSeconds: [0.001], cumulative: [2], count: 2, sumSeconds: 0 });
  });

  test("bounds that do not ascend are refused", () => {
    expect(() => new DurationHistogram([0.1, 0.1])).toThrow(RangeError);
  });

  test("cumulative counts never decrease and never exceed the count; the sum is the sum of what was observed", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { maxLength: 200 }), (values) => {
        const h = new DurationHistogram();
        for (const v of values) h.observe(v);
        const s = h.snapshot();
        for (let i = 1; i < s.cumulative.length; i++)
          expect(s.cumulative[i]!).toBeGreaterThanOrEqual(s.cumulative[i - 1]!);
        expect(s.cumulative.at(-1)!).toBeLessThanOrEqual(s.count);
        expect(s.count).toBe(values.length);
        const expected = values.reduce((a, b) => a + b, 0) / 1000;
        expect(Math.abs(s.sumSeconds - expected)).toBeLessThanOrEqual(Math.abs(expected) * 1e-9 + 1e-9);
        for (let i = 0; i < s.boundsSeconds.length; i++) {
          const bound = s.boundsSeconds[i]! * 1000;
          expect(s.cumulative[i]).toBe(values.filter((v) => v <= bound).length);
        }
      }),
    );
  });
});
