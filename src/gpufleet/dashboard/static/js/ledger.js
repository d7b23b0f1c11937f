// The usage ledger's buckets (UTC hours or days), as GET /api/v1/usage answers them: the window
// is the whole hours covering [start, end), so the first bucket is whole (its start rounded down)
// and only the current one is partial, holding what the ledger has accrued so far. Charts draw
// the current bucket at the pace of that part instead of as a drop.

const HOUR_MS = 3_600_000;
// A bucket only just begun is read as at least a minute, not as a spike.
const SHORTEST_HOURS = 1 / 60;

// The start of the bucket of length ``bucketMs`` (an hour or a UTC day) holding ``ms``.
export function bucketStart(ms, bucketMs) {
  return ms - (ms % bucketMs);
}

// Hours of the bucket [start, start + bucketMs) the ledger can have accrued by ``answeredAt``
// (epoch ms, when its answer arrived: nothing later than that can be in it).
export function accruedHours(start, bucketMs, answeredAt) {
  const covered = Math.min(start + bucketMs, answeredAt) - start;
  return Math.max(covered / HOUR_MS, SHORTEST_HOURS);
}
