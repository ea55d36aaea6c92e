//! Date-histogram buckets tantivy cannot compute directly: calendar months, quarters and
//! years (their length varies), and any interval in a named time zone (daylight saving
//! moves the boundaries). Leaves compute fine fixed-length UTC buckets; the root folds
//! them into these.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde_json::Value;

/// The fine buckets leaves compute for a named time zone: every zone offset in use is a
/// multiple of 15 minutes, so each fine bucket falls in exactly one local bucket.
pub(crate) const FINE_INTERVAL: &str = "15m";
const FINE_INTERVAL_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    /// A fixed interval, in milliseconds.
    Fixed(i64),
}

impl Unit {
    /// A `calendar_interval` value.
    pub(crate) fn calendar(text: &str) -> Option<Unit> {
        Some(match text {
            "minute" | "1m" => Unit::Minute,
            "hour" | "1h" => Unit::Hour,
            "day" | "1d" => Unit::Day,
            "week" | "1w" => Unit::Week,
            "month" | "1M" => Unit::Month,
            "quarter" | "1q" => Unit::Quarter,
            "year" | "1y" => Unit::Year,
            _ => return None,
        })
    }

    /// A `fixed_interval` value: a number and `ms`, `s`, `m`, `h` or `d`.
    pub(crate) fn fixed(text: &str) -> Option<Unit> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let number: i64 = number.parse().ok().filter(|number| *number > 0)?;
        let unit_ms = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        number.checked_mul(unit_ms).map(Unit::Fixed)
    }

    /// Months, quarters and years are not a fixed number of milliseconds, even in UTC.
    pub(crate) fn varies_in_length(self) -> bool {
        matches!(self, Unit::Month | Unit::Quarter | Unit::Year)
    }

    /// Whether leaves can count buckets of this unit at `FINE_INTERVAL` and the root fold
    /// them; shorter fixed intervals are counted as they are.
    pub(crate) fn folds_from_fine_buckets(self) -> bool {
        !matches!(self, Unit::Minute) && !matches!(self, Unit::Fixed(ms) if ms < FINE_INTERVAL_MS)
    }
}

/// A named IANA zone (`Europe/Paris`). `None` for UTC and fixed offsets (`+02:00`), which
/// tantivy handles as a bucket offset.
pub(crate) fn named_zone(text: &str) -> Option<Result<TimeZone, String>> {
    let is_utc = ["UTC", "Z", "Etc/UTC", "GMT", "+00:00", "-00:00"]
        .iter()
        .any(|utc| utc.eq_ignore_ascii_case(text));
    if is_utc || text.starts_with('+') || text.starts_with('-') {
        return None;
    }
    Some(TimeZone::get(text).map_err(|_| format!("unknown time_zone `{text}`")))
}

fn midnight(date: Date) -> DateTime {
    date.to_datetime(Time::midnight())
}

/// The start, in epoch milliseconds, of the `unit` bucket holding `instant_ms` in `zone`.
pub(crate) fn bucket_start(unit: Unit, zone: &TimeZone, instant_ms: i64) -> Option<i64> {
    let zoned = Timestamp::from_millisecond(instant_ms)
        .ok()?
        .to_zoned(zone.clone());
    let local = zoned.datetime();
    let date = local.date();
    let start = match unit {
        Unit::Minute => local.with().second(0).subsec_nanosecond(0).build().ok()?,
        Unit::Hour => local
            .with()
            .minute(0)
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?,
        Unit::Day => midnight(date),
        Unit::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            midnight(date.checked_sub(Span::new().days(back)).ok()?)
        }
        Unit::Month => midnight(date.first_of_month()),
        Unit::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            midnight(Date::new(date.year(), month, 1).ok()?)
        }
        Unit::Year => midnight(Date::new(date.year(), 1, 1).ok()?),
        Unit::Fixed(interval_ms) => {
            // Intervals are counted from the epoch in local time, as Elasticsearch does.
            let offset_ms = i64::from(zoned.offset().seconds()) * 1000;
            let local_ms = instant_ms + offset_ms;
            let bucket_local_ms = local_ms.div_euclid(interval_ms) * interval_ms;
            Timestamp::from_millisecond(bucket_local_ms)
                .ok()?
                .to_zoned(TimeZone::UTC)
                .datetime()
        }
    };
    // A local midnight skipped by daylight saving starts at the first instant after it.
    let start = zone.to_ambiguous_zoned(start).compatible().ok()?;
    Some(start.timestamp().as_millisecond())
}

fn key_as_string(start_ms: i64, zone: &TimeZone) -> String {
    match Timestamp::from_millisecond(start_ms) {
        Ok(timestamp) if zone == &TimeZone::UTC => {
            timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        }
        Ok(timestamp) => timestamp
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => start_ms.to_string(),
    }
}

/// Replaces the fine buckets of a `date_histogram` result by `unit` buckets in `zone`,
/// keeping those with at least `min_doc_count` documents.
pub(crate) fn fold(result: &mut Value, unit: Unit, zone: &TimeZone, min_doc_count: u64) {
    let Some(fine) = result["buckets"].as_array() else {
        return;
    };
    let mut folded: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for bucket in fine {
        let (Some(key), Some(count)) = (bucket["key"].as_f64(), bucket["doc_count"].as_u64())
        else {
            continue;
        };
        if let Some(start) = bucket_start(unit, zone, key as i64) {
            *folded.entry(start).or_default() += count;
        }
    }
    let buckets: Vec<Value> = folded
        .into_iter()
        .filter(|(_, count)| *count >= min_doc_count)
        .map(|(start, count)| {
            serde_json::json!({
                "key": start as f64,
                "key_as_string": key_as_string(start, zone),
                "doc_count": count,
            })
        })
        .collect();
    result["buckets"] = Value::Array(buckets);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn local_days_follow_daylight_saving() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // Winter: local midnight is 23:00 UTC the day before.
        assert_eq!(
            bucket_start(Unit::Day, &paris, millis("2026-01-15T10:00:00Z")),
            Some(millis("2026-01-14T23:00:00Z"))
        );
        // Summer: 22:00 UTC.
        assert_eq!(
            bucket_start(Unit::Day, &paris, millis("2026-07-15T21:59:00Z")),
            Some(millis("2026-07-14T22:00:00Z"))
        );
        assert_eq!(
            bucket_start(Unit::Day, &paris, millis("2026-07-15T22:00:00Z")),
            Some(millis("2026-07-15T22:00:00Z"))
        );
        // The day daylight saving starts (29 March 2026) is 23 hours long.
        assert_eq!(
            bucket_start(Unit::Day, &paris, millis("2026-03-29T21:59:00Z")),
            Some(millis("2026-03-28T23:00:00Z"))
        );
        // Weeks start on local Monday; months on the local first.
        assert_eq!(
            bucket_start(Unit::Week, &paris, millis("2026-01-18T12:00:00Z")),
            Some(millis("2026-01-11T23:00:00Z"))
        );
        assert_eq!(
            bucket_start(Unit::Month, &paris, millis("2026-06-30T22:30:00Z")),
            Some(millis("2026-06-30T22:00:00Z"))
        );
        let kolkata = TimeZone::get("Asia/Kolkata").unwrap();
        assert_eq!(
            bucket_start(
                Unit::Fixed(3_600_000),
                &kolkata,
                millis("2026-01-15T10:40:00Z")
            ),
            Some(millis("2026-01-15T10:30:00Z"))
        );
    }

    #[test]
    fn fine_buckets_fold_into_local_days() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let fine = |at: &str, count: u64| serde_json::json!({"key": millis(at) as f64, "doc_count": count});
        let mut result = serde_json::json!({"buckets": [
            fine("2026-01-14T22:45:00Z", 1),
            fine("2026-01-14T23:00:00Z", 2),
            fine("2026-01-15T22:45:00Z", 4),
            fine("2026-01-15T23:00:00Z", 0),
        ]});
        fold(&mut result, Unit::Day, &paris, 0);
        assert_eq!(
            result,
            serde_json::json!({"buckets": [
                {"key": millis("2026-01-13T23:00:00Z") as f64, "key_as_string": "2026-01-14T00:00:00+01:00", "doc_count": 1},
                {"key": millis("2026-01-14T23:00:00Z") as f64, "key_as_string": "2026-01-15T00:00:00+01:00", "doc_count": 6},
                {"key": millis("2026-01-15T23:00:00Z") as f64, "key_as_string": "2026-01-16T00:00:00+01:00", "doc_count": 0},
            ]})
        );
        fold(&mut result, Unit::Day, &paris, 1);
        assert_eq!(result["buckets"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn units_and_zones_parse() {
        assert_eq!(Unit::calendar("week"), Some(Unit::Week));
        assert_eq!(Unit::fixed("90m"), Some(Unit::Fixed(5_400_000)));
        assert_eq!(Unit::fixed("0d"), None);
        assert_eq!(Unit::fixed("3x"), None);
        assert!(named_zone("utc").is_none());
        assert!(named_zone("+02:00").is_none());
        assert!(matches!(named_zone("America/New_York"), Some(Ok(_))));
        assert!(matches!(named_zone("Mars/Olympus"), Some(Err(_))));
    }
}
