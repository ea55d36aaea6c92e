// The log-volume histogram's data: the aggregation the search sends and the stacked bars
// its answer becomes.

export const OTHER_SERIES = "(other)";
const MAX_SERIES = 8;

/** Aggregations for counts per `intervalMs` bucket over [fromMs, toMs), split by the
 * severity field when there is one. */
export function volumeAggregation(timestampField, severityField, intervalMs, fromMs, toMs) {
  const histogram = {
    date_histogram: {
      field: timestampField,
      fixed_interval: `${Math.round(intervalMs / 1000)}s`,
      min_doc_count: 0,
      extended_bounds: { min: fromMs, max: toMs - 1 },
    },
  };
  if (severityField) {
    histogram.aggs = { severity: { terms: { field: severityField, size: MAX_SERIES } } };
  }
  return { volume: histogram };
}

/** `{buckets: [{start, end, total, counts: {series: n}}], series: [...]}` from the answer:
 * series ordered by total count, what the terms did not name counted as OTHER_SERIES. */
export function stackBuckets(aggregations, intervalMs) {
  const raw = aggregations?.volume?.buckets ?? [];
  const totals = new Map();
  const buckets = raw.map((bucket) => {
    const start = Number(bucket.key);
    const counts = {};
    let named = 0;
    for (const term of bucket.severity?.buckets ?? []) {
      const series = String(term.key_as_string ?? term.key);
      counts[series] = (counts[series] ?? 0) + term.doc_count;
      named += term.doc_count;
    }
    const rest = bucket.doc_count - named;
    if (rest > 0) counts[OTHER_SERIES] = (counts[OTHER_SERIES] ?? 0) + rest;
    for (const [series, count] of Object.entries(counts)) {
      totals.set(series, (totals.get(series) ?? 0) + count);
    }
    return { start, end: start + intervalMs, total: bucket.doc_count, counts };
  });
  const series = [...totals.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name]) => name);
  return { buckets, series };
}
