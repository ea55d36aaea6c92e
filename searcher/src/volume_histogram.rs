//! The log-volume histogram from a split's per-minute counts (`quarry.volume`): a date
//! histogram of whole minutes on the timestamp field, optionally split by a tag field,
//! over a query that is only a time window. Grafana and the UI send it with every
//! refresh; the counts answer it without visiting a document.
//!
//! Minutes wholly inside the window come from the counts. The (at most two) minutes the
//! window cuts are searched by the leaf, and both results are merged, so the answer is
//! the collector's to the document.

use quarry_common::split::volume::{minute_of, minutes_between, BUCKET_SECS};
use quarry_common::split::VolumeCounts;
use quarry_query::query_builder::TimestampWindow;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;

use crate::date_histogram::{Bucket, HistogramShape};

const MINUTE_NANOS: i64 = BUCKET_SECS * 1_000_000_000;

/// A histogram the counts can answer.
#[derive(Debug, PartialEq)]
pub(crate) struct VolumeHistogram {
    shape: HistogramShape,
}

impl VolumeHistogram {
    /// `Some` when `aggs` is a histogram of `HistogramShape` on the counted timestamp
    /// field, its buckets whole minutes, split (if at all) by a counted tag field.
    pub(crate) fn plan(aggs: &Aggregations, counts: &VolumeCounts) -> Option<VolumeHistogram> {
        let shape = HistogramShape::of(aggs)?;
        let whole_minutes =
            shape.interval_nanos % MINUTE_NANOS == 0 && shape.offset_nanos % MINUTE_NANOS == 0;
        let counted_split = shape
            .split_by
            .as_ref()
            .is_none_or(|(_, field)| counts.tags.contains_key(field));
        (shape.field == counts.timestamp_field && whole_minutes && counted_split)
            .then_some(VolumeHistogram { shape })
    }

    /// The histogram of the minutes wholly inside `window`, and the minutes it cuts that
    /// hold documents (which the caller searches).
    pub(crate) fn read_counts(
        &self,
        counts: &VolumeCounts,
        window: TimestampWindow,
    ) -> Result<Counted, String> {
        let whole = WholeMinutes::of(window);
        let mut cut_minutes: Vec<i64> = whole
            .cut
            .iter()
            .copied()
            .filter(|minute| counts.total_between(*minute, minute + 1) > 0)
            .collect();
        cut_minutes.dedup();
        let totals = minutes_between(&counts.totals, whole.from, whole.to);
        let num_docs = totals.iter().map(|(_, count)| count).sum();
        let mut buckets: Vec<Bucket> = self
            .bucket_counts(totals)
            .into_iter()
            .map(|(position, doc_count)| Bucket {
                position,
                doc_count,
                terms: Vec::new(),
            })
            .collect();
        if let Some((_, field)) = &self.shape.split_by {
            let values = counts
                .tags
                .get(field)
                .ok_or_else(|| format!("no counts for tag field `{field}`"))?;
            for (value, minutes) in values {
                let minutes = minutes_between(minutes, whole.from, whole.to);
                let mut index = 0;
                for (position, doc_count) in self.bucket_counts(minutes) {
                    // Every minute of a value holds a document, so its bucket exists.
                    while buckets[index].position < position {
                        index += 1;
                    }
                    buckets[index].terms.push((value.clone(), doc_count));
                }
            }
        }
        Ok(Counted {
            aggregations: self.shape.result(buckets)?,
            num_docs,
            cut_minutes,
        })
    }

    /// Bucket positions and counts of `minutes`, positions ascending.
    fn bucket_counts(&self, minutes: &[(i64, u64)]) -> Vec<(i64, u64)> {
        let mut counts: Vec<(i64, u64)> = Vec::new();
        for &(minute, count) in minutes {
            let position = self.shape.position(minute_span_nanos(minute).0);
            match counts.last_mut() {
                Some((last, total)) if *last == position => *total += count,
                _ => counts.push((position, count)),
            }
        }
        counts
    }
}

pub(crate) struct Counted {
    pub aggregations: IntermediateAggregationResults,
    /// Documents in the whole minutes.
    pub num_docs: u64,
    /// Minutes the window cuts that hold documents: these need a search.
    pub cut_minutes: Vec<i64>,
}

/// Minutes `[from, to)` lie wholly inside a window; `cut` are those it only partly covers.
struct WholeMinutes {
    from: i64,
    to: i64,
    cut: Vec<i64>,
}

impl WholeMinutes {
    fn of(window: TimestampWindow) -> WholeMinutes {
        let mut cut = Vec::new();
        let from = match window.start_nanos {
            None => i64::MIN,
            Some(start) if start.rem_euclid(MINUTE_NANOS) == 0 => minute_of(start),
            Some(start) => {
                cut.push(minute_of(start));
                minute_of(start) + 1
            }
        };
        let to = match window.end_nanos {
            None => i64::MAX,
            Some(end) => {
                if end.rem_euclid(MINUTE_NANOS) != 0 {
                    cut.push(minute_of(end));
                }
                minute_of(end)
            }
        };
        if from >= to {
            // The window lies within one minute (or is empty): no minute is whole.
            cut.retain(|minute| {
                window
                    .end_nanos
                    .is_none_or(|end| minute_span_nanos(*minute).0 < end)
            });
            return WholeMinutes {
                from: 0,
                to: 0,
                cut,
            };
        }
        WholeMinutes { from, to, cut }
    }
}

/// A minute as `[start, end)` nanoseconds since the epoch.
pub(crate) fn minute_span_nanos(minute: i64) -> (i64, i64) {
    let start = minute.saturating_mul(MINUTE_NANOS);
    (start, start.saturating_add(MINUTE_NANOS))
}
