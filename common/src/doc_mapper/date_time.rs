use quarry_config::DateTimeInputFormat;
use tantivy::DateTime;
use time::format_description::well_known::{Iso8601, Rfc2822, Rfc3339};
use time::format_description::OwnedFormatItem;
use time::parsing::Parsed;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Parses a datetime string with the first of `formats` that accepts it.
pub fn parse_date_time_str(text: &str, formats: &[DateTimeInputFormat]) -> Option<DateTime> {
    let text = text.trim();
    formats.iter().find_map(|format| match format {
        DateTimeInputFormat::Rfc3339 => OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(DateTime::from_utc),
        DateTimeInputFormat::Rfc2822 => OffsetDateTime::parse(text, &Rfc2822)
            .ok()
            .map(DateTime::from_utc),
        DateTimeInputFormat::Iso8601 => OffsetDateTime::parse(text, &Iso8601::DEFAULT)
            .ok()
            .or_else(|| {
                PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                    .ok()
                    .map(PrimitiveDateTime::assume_utc)
            })
            .map(DateTime::from_utc),
        DateTimeInputFormat::Strptime(pattern) => parse_strptime(text, pattern),
        // Numbers sent as strings, e.g. `"1700000000"`.
        unix => match text.parse::<i64>() {
            Ok(whole) => parse_date_time_integer(whole, std::slice::from_ref(unix)),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .and_then(|number| parse_date_time_number(number, std::slice::from_ref(unix))),
        },
    })
}

/// Nanoseconds per unit of a unix timestamp format; the unit of `unix_timestamp` is told
/// apart by magnitude: 1e11 seconds is year 5138, while 1e11 milliseconds is 1973, and so
/// on for each unit.
fn nanos_per_unit(format: &DateTimeInputFormat, magnitude: f64) -> Option<i64> {
    Some(match format {
        DateTimeInputFormat::UnixTimestampSecs => 1_000_000_000,
        DateTimeInputFormat::UnixTimestampMillis => 1_000_000,
        DateTimeInputFormat::UnixTimestampMicros => 1_000,
        DateTimeInputFormat::UnixTimestampNanos => 1,
        DateTimeInputFormat::UnixTimestamp => match magnitude {
            n if n < 1e11 => 1_000_000_000,
            n if n < 1e14 => 1_000_000,
            n if n < 1e17 => 1_000,
            _ => 1,
        },
        _ => return None,
    })
}

/// Whole unix timestamps, converted exactly (a float would turn `…218` ms into `…217.999`).
pub fn parse_date_time_integer(value: i64, formats: &[DateTimeInputFormat]) -> Option<DateTime> {
    formats.iter().find_map(|format| {
        let per_unit = nanos_per_unit(format, (value as f64).abs())?;
        value
            .checked_mul(per_unit)
            .map(DateTime::from_timestamp_nanos)
    })
}

/// Parses a number of seconds/milliseconds/microseconds/nanoseconds since the epoch, if
/// one of `formats` is a unix timestamp format.
///
/// A fraction is rounded to the microsecond for seconds and milliseconds: a double holds
/// today's seconds to about a quarter of a microsecond, so `1668422437.218` is
/// `…37.2179999351` in binary, and multiplying it into nanoseconds would store
/// `…37.217999872` where the sender meant `.218` (and a range from `1668422437218` ms
/// would miss it). Nothing finer than that was sent in a double anyway.
pub fn parse_date_time_number(number: f64, formats: &[DateTimeInputFormat]) -> Option<DateTime> {
    if !number.is_finite() {
        return None;
    }
    formats.iter().find_map(|format| {
        let per_unit = nanos_per_unit(format, number.abs())?;
        // Whole microseconds (or nanoseconds) in the double, then exact integers: a double
        // cannot hold today's nanoseconds to the unit.
        let (count, per_count) = if per_unit >= 1_000_000 {
            ((number * (per_unit / 1_000) as f64).round(), 1_000)
        } else {
            ((number * per_unit as f64).round(), 1)
        };
        if count.abs() >= i64::MAX as f64 {
            return None;
        }
        (count as i64)
            .checked_mul(per_count)
            .map(DateTime::from_timestamp_nanos)
    })
}

fn parse_strptime(text: &str, pattern: &str) -> Option<DateTime> {
    let items = strptime_to_format_items(pattern)?;
    let mut parsed = Parsed::new();
    let rest = parsed.parse_item(text.as_bytes(), &items).ok()?;
    if !rest.is_empty() {
        return None;
    }
    if let Ok(with_offset) = OffsetDateTime::try_from(parsed) {
        return Some(DateTime::from_utc(with_offset));
    }
    if let Ok(naive) = PrimitiveDateTime::try_from(parsed) {
        return Some(DateTime::from_utc(naive.assume_utc()));
    }
    time::Date::try_from(parsed)
        .ok()
        .map(|date| DateTime::from_utc(date.midnight().assume_utc()))
}

/// Translates a `strptime` pattern into the `time` crate's format description.
fn strptime_to_format_items(pattern: &str) -> Option<OwnedFormatItem> {
    let mut description = String::with_capacity(pattern.len() * 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if c == '[' {
                description.push_str("[[");
            } else {
                description.push(c);
            }
            continue;
        }
        let component = match chars.next()? {
            'Y' => "[year]",
            'y' => "[year repr:last_two]",
            'm' => "[month]",
            'd' => "[day]",
            'e' => "[day padding:space]",
            'H' => "[hour]",
            'I' => "[hour repr:12]",
            'p' => "[period]",
            'M' => "[minute]",
            'S' => "[second]",
            'f' => "[subsecond]",
            'z' => "[offset_hour sign:mandatory][offset_minute]",
            'b' => "[month repr:short]",
            'B' => "[month repr:long]",
            'a' => "[weekday repr:short]",
            'A' => "[weekday]",
            'j' => "[ordinal]",
            'T' => "[hour]:[minute]:[second]",
            'D' => "[month]/[day]/[year repr:last_two]",
            'F' => "[year]-[month]-[day]",
            '%' => "%",
            _ => return None,
        };
        description.push_str(component);
    }
    time::format_description::parse_owned::<2>(&description).ok()
}

/// The output format for datetimes in hits: RFC 3339 in UTC, with milli-, micro- or
/// nanoseconds as the value needs them (log timestamps are usually written that way).
/// A datetime as a field's `output_format` shows it in hits: text for the text formats,
/// an integer for the unix timestamp units.
pub fn format_date_time(date_time: DateTime, format: &DateTimeInputFormat) -> serde_json::Value {
    let nanos = date_time.into_timestamp_nanos();
    let utc = date_time.into_utc();
    let text = match format {
        DateTimeInputFormat::UnixTimestampSecs => return nanos.div_euclid(1_000_000_000).into(),
        DateTimeInputFormat::UnixTimestampMillis => return nanos.div_euclid(1_000_000).into(),
        DateTimeInputFormat::UnixTimestampMicros => return nanos.div_euclid(1_000).into(),
        DateTimeInputFormat::UnixTimestampNanos => return nanos.into(),
        DateTimeInputFormat::Rfc2822 => utc
            .format(&time::format_description::well_known::Rfc2822)
            .ok(),
        DateTimeInputFormat::Iso8601 => utc
            .format(&time::format_description::well_known::Iso8601::DEFAULT)
            .ok(),
        DateTimeInputFormat::Strptime(pattern) => {
            strptime_to_format_items(pattern).and_then(|items| utc.format(&items).ok())
        }
        DateTimeInputFormat::Rfc3339 | DateTimeInputFormat::UnixTimestamp => None,
    };
    // A date a format cannot show (rfc2822 before 1900, say) keeps the default form.
    serde_json::Value::String(text.unwrap_or_else(|| format_rfc3339(date_time)))
}

pub fn format_rfc3339(date_time: DateTime) -> String {
    let utc = date_time.into_utc();
    let nanos = utc.nanosecond();
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    let (year, month, day) = (utc.year(), u8::from(utc.month()), utc.day());
    let (hour, minute, second) = (utc.hour(), utc.minute(), utc.second());
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
    } else {
        utc.format(&Rfc3339)
            .unwrap_or_else(|_| date_time.into_timestamp_nanos().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(names: &[&str]) -> Vec<DateTimeInputFormat> {
        names.iter().map(|name| name.parse().unwrap()).collect()
    }

    #[test]
    fn parses_each_format() {
        let expected = DateTime::from_timestamp_secs(1_767_225_600); // 2026-01-01T00:00:00Z
        let all = formats(&[
            "rfc3339",
            "rfc2822",
            "iso8601",
            "%Y-%m-%d %H:%M:%S",
            "unix_timestamp",
        ]);
        assert_eq!(
            parse_date_time_str("2026-01-01T00:00:00Z", &all),
            Some(expected)
        );
        assert_eq!(
            parse_date_time_str("2026-01-01T01:00:00+01:00", &all),
            Some(expected)
        );
        assert_eq!(
            parse_date_time_str("Thu, 01 Jan 2026 00:00:00 +0000", &all),
            Some(expected)
        );
        assert_eq!(
            parse_date_time_str("2026-01-01 00:00:00", &all),
            Some(expected)
        );
        assert_eq!(parse_date_time_str("1767225600", &all), Some(expected));
        assert_eq!(parse_date_time_str("yesterday", &all), None);
        let date_only = formats(&["%Y-%m-%d"]);
        assert_eq!(
            parse_date_time_str("2026-01-01", &date_only),
            Some(expected)
        );
        let with_offset = formats(&["%d/%b/%Y:%H:%M:%S %z"]);
        assert_eq!(
            parse_date_time_str("01/Jan/2026:01:00:00 +0100", &with_offset),
            Some(expected)
        );
    }

    #[test]
    fn unix_timestamps_by_magnitude_and_explicit_unit() {
        let auto = formats(&["unix_timestamp"]);
        let secs = 1_767_225_600i64;
        let expected = DateTime::from_timestamp_secs(secs);
        assert_eq!(parse_date_time_number(secs as f64, &auto), Some(expected));
        assert_eq!(
            parse_date_time_number((secs * 1_000) as f64, &auto),
            Some(expected)
        );
        assert_eq!(
            parse_date_time_number((secs * 1_000_000) as f64, &auto),
            Some(expected)
        );
        assert_eq!(
            parse_date_time_number(secs as f64 * 1e9, &auto),
            Some(expected)
        );
        assert_eq!(
            parse_date_time_number(1.5, &formats(&["unix_timestamp_secs"])),
            Some(DateTime::from_timestamp_millis(1_500))
        );
        assert_eq!(
            parse_date_time_number(1_500.0, &formats(&["unix_timestamp_millis"])),
            Some(DateTime::from_timestamp_millis(1_500))
        );
        assert_eq!(parse_date_time_number(1.0, &formats(&["rfc3339"])), None);
        // Fractions are what the sender wrote, to the microsecond, not the binary double.
        assert_eq!(
            parse_date_time_number(1_668_422_437.218, &auto),
            Some(DateTime::from_timestamp_millis(1_668_422_437_218))
        );
        assert_eq!(
            parse_date_time_number(1_668_422_437.218_001, &formats(&["unix_timestamp_secs"])),
            Some(DateTime::from_timestamp_micros(1_668_422_437_218_001))
        );
        assert_eq!(
            parse_date_time_number(1_668_422_437_218.5, &formats(&["unix_timestamp_millis"])),
            Some(DateTime::from_timestamp_micros(1_668_422_437_218_500))
        );
        assert_eq!(
            parse_date_time_number(-0.25, &formats(&["unix_timestamp_secs"])),
            Some(DateTime::from_timestamp_millis(-250))
        );
        assert_eq!(parse_date_time_number(f64::NAN, &auto), None);
        assert_eq!(
            parse_date_time_integer(1_668_422_437_218, &auto),
            Some(DateTime::from_timestamp_millis(1_668_422_437_218))
        );
        assert_eq!(
            parse_date_time_integer(i64::MAX, &formats(&["unix_timestamp_secs"])),
            None
        );
    }

    #[test]
    fn formats_as_rfc3339() {
        assert_eq!(
            format_rfc3339(DateTime::from_timestamp_micros(1_767_225_600_123_456)),
            "2026-01-01T00:00:00.123456Z"
        );
        assert_eq!(
            format_rfc3339(DateTime::from_timestamp_micros(1_767_225_600_169_730)),
            "2026-01-01T00:00:00.169730Z"
        );
        assert_eq!(
            format_rfc3339(DateTime::from_timestamp_millis(1_767_225_600_500)),
            "2026-01-01T00:00:00.500Z"
        );
        assert_eq!(
            format_rfc3339(DateTime::from_timestamp_secs(1_767_225_600)),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339(DateTime::from_timestamp_nanos(1_767_225_600_000_000_001)),
            "2026-01-01T00:00:00.000000001Z"
        );
    }
}
