// The usage ledger's buckets (UTC hours or days) cut by a window: the ledger answers only the
// part of a bucket inside [start, end), so the current hour and a window's first bucket hold
// less than a full one. Charts divide by the hours covered instead of drawing a drop.

const HOUR_MS = 3_600_000;
// A bucket the window has barely entered is read as at least a minute, not as a spike.
const SHORTEST_HOURS = 1 / 60;

// Hours of the bucket [bucketStart, bucketStart + bucketMs) inside [start, end) (epoch ms).
export function coveredHours(bucketStart, bucketMs, start, end) {
  const covered = Math.min(bucketStart + bucketMs, end) - Math.max(bucketStart, start);
  return Math.max(covered / HOUR_MS, SHORTEST_HOURS);
}
