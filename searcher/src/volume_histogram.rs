//! The log-volume histogram from a split's per-minute counts (`quarry.volume`): a date
//! histogram on the timestamp field, optionally split by a tag field's values, over a
//! query that is only a time window. Grafana and the UI send it with every refresh;
//! tantivy's collector visits every document for it, the counts answer in microseconds.
//!
//! Minutes wholly inside the window come from the counts. The (at most two) minutes the
//! window cuts are searched with tantivy's own collector, and both results are merged,
//! so the answer is the collector's to the document.

use quarry_common::split::volume::{minute_of, minutes_between, BUCKET_SECS};
use quarry_common::split::VolumeCounts;
use quarry_query::query_builder::TimestampWindow;
use serde::Serialize;
use tantivy::aggregation::agg_req::{AggregationVariants, Aggregations};
use tantivy::aggregation::intermediate_agg_result::{
    IntermediateAggregationResult, IntermediateAggregationResults, IntermediateBucketResult,
    IntermediateHistogramBucketEntry, IntermediateTermBucketResult,
};

const NANOS_PER_MILLI: i64 = 1_000_000;
const MINUTE_NANOS: i64 = BUCKET_SECS * 1_000_000_000;

/// A request the counts can answer: its names and bucket geometry.
#[derive(Debug, PartialEq)]
pub(crate) struct VolumeHistogram {
    name: String,
    interval_nanos: i64,
    offset_nanos: i64,
    /// `(name, field)` of the terms sub-aggregation on a tag field.
    split_by: Option<(String, String)>,
}

impl VolumeHistogram {
    /// `Some` when `aggs` is one date histogram on the counted timestamp field whose
    /// buckets are whole minutes, with at most a plain terms aggregation on a counted tag
    /// field under it.
    pub(crate) fn plan(aggs: &Aggregations, counts: &VolumeCounts) -> Option<VolumeHistogram> {
        let mut named = aggs.iter();
        let (name, aggregation) = named.next()?;
        if named.next().is_some() {
            return None;
        }
        let AggregationVariants::DateHistogram(histogram) = &aggregation.agg else {
            return None;
        };
        if histogram.field != counts.timestamp_field
            || histogram.hard_bounds.is_some()
            || histogram.interval.is_some()
            || histogram.calendar_interval.is_some()
        {
            return None;
        }
        let interval_millis = parse_millis(histogram.fixed_interval.as_deref()?)?;
        let offset_millis = match histogram.offset.as_deref() {
            None => 0,
            Some(offset) => parse_offset_millis(offset)?,
        };
        let minute_millis = BUCKET_SECS * 1_000;
        if interval_millis <= 0
            || interval_millis % minute_millis != 0
            || offset_millis % minute_millis != 0
        {
            return None;
        }
        let split_by = match aggregation.sub_aggregation.len() {
            0 => None,
            1 => {
                let (sub_name, sub) = aggregation.sub_aggregation.iter().next()?;
                let AggregationVariants::Terms(terms) = &sub.agg else {
                    return None;
                };
                let plain = sub.sub_aggregation.is_empty()
                    && terms.missing.is_none()
                    && terms.include.is_none()
                    && terms.exclude.is_none()
                    && counts.tags.contains_key(&terms.field);
                if !plain {
                    return None;
                }
                Some((sub_name.clone(), terms.field.clone()))
            }
            _ => return None,
        };
        Some(VolumeHistogram {
            name: name.clone(),
            interval_nanos: interval_millis.checked_mul(NANOS_PER_MILLI)?,
            offset_nanos: offset_millis.checked_mul(NANOS_PER_MILLI)?,
            split_by,
        })
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
        let mut buckets = self.buckets(totals);
        if let Some((sub_name, field)) = &self.split_by {
            let values = counts
                .tags
                .get(field)
                .ok_or_else(|| format!("no counts for tag field `{field}`"))?;
            let mut per_bucket: Vec<Vec<(String, u64)>> = vec![Vec::new(); buckets.len()];
            for (value, minutes) in values {
                let minutes = minutes_between(minutes, whole.from, whole.to);
                let mut position = 0;
                for (key, doc_count) in self.bucket_counts(minutes) {
                    // Every minute of a value holds a document, so its bucket exists.
                    while buckets[position].0 < key {
                        position += 1;
                    }
                    per_bucket[position].push((value.clone(), doc_count));
                }
            }
            for ((_, _, sub_aggregation), terms) in buckets.iter_mut().zip(per_bucket) {
                sub_aggregation
                    .push(
                        sub_name.clone(),
                        IntermediateAggregationResult::Bucket(IntermediateBucketResult::Terms {
                            buckets: terms_result(terms)?,
                        }),
                    )
                    .map_err(|error| error.to_string())?;
            }
        }
        let entries = buckets
            .into_iter()
            .map(
                |(key, doc_count, sub_aggregation)| IntermediateHistogramBucketEntry {
                    key: self.key_of_position(key),
                    doc_count,
                    sub_aggregation,
                },
            )
            .collect();
        let mut aggregations = IntermediateAggregationResults::default();
        aggregations
            .push(
                self.name.clone(),
                IntermediateAggregationResult::Bucket(IntermediateBucketResult::Histogram {
                    is_date_agg: true,
                    buckets: entries,
                }),
            )
            .map_err(|error| error.to_string())?;
        Ok(Counted {
            aggregations,
            num_docs,
            cut_minutes,
        })
    }

    /// Bucket positions and counts of `minutes`, positions ascending.
    fn bucket_counts(&self, minutes: &[(i64, u64)]) -> Vec<(i64, u64)> {
        let mut counts: Vec<(i64, u64)> = Vec::new();
        for &(minute, count) in minutes {
            let position = minute_span_nanos(minute)
                .0
                .saturating_sub(self.offset_nanos)
                .div_euclid(self.interval_nanos);
            match counts.last_mut() {
                Some((last, total)) if *last == position => *total += count,
                _ => counts.push((position, count)),
            }
        }
        counts
    }

    fn buckets(&self, totals: &[(i64, u64)]) -> Vec<(i64, u64, IntermediateAggregationResults)> {
        self.bucket_counts(totals)
            .into_iter()
            .map(|(position, count)| (position, count, IntermediateAggregationResults::default()))
            .collect()
    }

    /// The key tantivy gives bucket `position`, computed as it does (in `f64`), so that
    /// buckets from the counts and from the collector merge.
    fn key_of_position(&self, position: i64) -> f64 {
        position as f64 * self.interval_nanos as f64 + self.offset_nanos as f64
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
                    .is_none_or(|end| minute * MINUTE_NANOS < end)
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

/// A tantivy terms result holding every value: the root cuts it to `size`, which makes
/// it at least as exact as the collector's (which cuts each segment at `shard_size`).
fn terms_result(mut terms: Vec<(String, u64)>) -> Result<IntermediateTermBucketResult, String> {
    // tantivy builds this type only inside its collectors; its serde form is public and
    // is what leaves send to roots, so it is built through that form. The unit tests
    // compare the outcome with the collector's own.
    #[derive(Serialize)]
    enum Key {
        #[allow(dead_code)]
        IpAddr(std::net::Ipv6Addr),
        #[allow(dead_code)]
        Bool(bool),
        Str(String),
    }
    #[derive(Serialize)]
    struct Entry {
        doc_count: u64,
        sub_aggregation: IntermediateAggregationResults,
    }
    #[derive(Serialize)]
    struct Terms {
        entries: Vec<(Key, Entry)>,
        sum_other_doc_count: u64,
        doc_count_error_upper_bound: u64,
    }
    terms.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    let terms = Terms {
        entries: terms
            .into_iter()
            .map(|(value, doc_count)| {
                (
                    Key::Str(value),
                    Entry {
                        doc_count,
                        sub_aggregation: IntermediateAggregationResults::default(),
                    },
                )
            })
            .collect(),
        sum_other_doc_count: 0,
        doc_count_error_upper_bound: 0,
    };
    let bytes = postcard::to_allocvec(&terms).map_err(|error| error.to_string())?;
    postcard::from_bytes(&bytes).map_err(|error| format!("building a terms result: {error}"))
}

/// `60s`, `1m`, `5m`, `1h`, `1d`… as tantivy reads `fixed_interval`.
fn parse_millis(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_millis)
}

fn parse_offset_millis(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(rest) => parse_millis(rest).map(|millis| -millis),
        None => parse_millis(text.strip_prefix('+').unwrap_or(text)),
    }
}

/// A minute as `[start, end)` nanoseconds since the epoch.
pub(crate) fn minute_span_nanos(minute: i64) -> (i64, i64) {
    let start = minute.saturating_mul(MINUTE_NANOS);
    (start, start.saturating_add(MINUTE_NANOS))
}
