/** Small statistics over samples; every function takes an empty input as "no value" (NaN), never an error. */

export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export function mean(values: ArrayLike<number>, count = values.length): number {
  if (count === 0) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < count; i++) sum += values[i]!;
  return sum / count;
}

/** The nearest-rank percentile (0 < p ≤ 100) of the first `count` values, which are sorted in place. */
export function percentileInPlace(values: Float64Array, count: number, p: number): number {
  if (count === 0) return Number.NaN;
  const view = values.subarray(0, count).sort();
  const rank = Math.min(count, Math.max(1, Math.ceil((p / 100) * count)));
  return view[rank - 1]!;
}

/** a / b, or NaN when either side is missing or b is zero. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}
