//! How one stream of values is written. Log values have a few common shapes that plain
//! text hides from zstd: RFC 3339 timestamps (a number in disguise, close to the one
//! before), hex ids (half their bytes are redundant) and integers. A shape's codec is
//! used only when every value of the stream decodes back to its exact text; otherwise
//! the stream stays plain.

use std::ops::Range;

use rustc_hash::FxHashMap;

use super::messages;
use super::varint::{read_varint, unzigzag, write_varint, zigzag};
use super::SourceStoreError;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(super) enum Codec {
    /// Varint lengths, then the values' bytes back to back.
    Plain = 0,
    /// Lowercase hex strings of one even length, as bytes.
    Hex = 1,
    /// `YYYY-MM-DDTHH:MM:SS[.f…]Z` with one number of fraction digits, as varint deltas.
    Timestamp = 2,
    /// Integers written the canonical way, as zigzag varints.
    Integer = 3,
    /// At most 256 distinct values, each four times or more: the values once, then a byte
    /// per value (host names, levels, regions).
    Dictionary = 4,
    /// Log messages: templates once, variables in columns (`messages`).
    Message = 5,
}

impl Codec {
    pub(super) fn from_u8(byte: u8) -> Option<Codec> {
        [
            Codec::Plain,
            Codec::Hex,
            Codec::Timestamp,
            Codec::Integer,
            Codec::Dictionary,
            Codec::Message,
        ]
        .into_iter()
        .find(|codec| *codec as u8 == byte)
    }
}

/// The best codec for `values` and their encoding.
pub(super) fn encode(values: &[&[u8]], strings: bool) -> (Codec, Vec<u8>) {
    let encoded = if strings {
        encode_timestamps(values)
            .map(|payload| (Codec::Timestamp, payload))
            .or_else(|| encode_hex(values).map(|payload| (Codec::Hex, payload)))
            .or_else(|| encode_dictionary(values).map(|payload| (Codec::Dictionary, payload)))
    } else {
        encode_integers(values).map(|payload| (Codec::Integer, payload))
    };
    let encoded = encoded.or_else(|| {
        messages::encode(values)
            .filter(|payload| message_round_trips(values, payload))
            .map(|payload| (Codec::Message, payload))
    });
    encoded.unwrap_or_else(|| (Codec::Plain, encode_plain(values)))
}

fn encode_plain(values: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        write_varint(&mut out, value.len() as u64);
    }
    for value in values {
        out.extend_from_slice(value);
    }
    out
}

fn encode_dictionary(values: &[&[u8]]) -> Option<Vec<u8>> {
    let mut ids: FxHashMap<&[u8], u8> = FxHashMap::default();
    let mut distinct = Vec::new();
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let id = match ids.get(value) {
            Some(id) => *id,
            None => {
                let id = u8::try_from(distinct.len()).ok()?;
                ids.insert(value, id);
                distinct.push(*value);
                id
            }
        };
        out.push(id);
    }
    if distinct.len() * 4 > values.len() {
        return None;
    }
    let mut payload = Vec::with_capacity(out.len() + distinct.len() * 8);
    write_varint(&mut payload, distinct.len() as u64);
    payload.extend_from_slice(&encode_plain(&distinct));
    payload.extend_from_slice(&out);
    Some(payload)
}

/// The message codec is exact by construction; this check keeps a bug in it from
/// altering documents, at the cost of decoding each message stream once more.
fn message_round_trips(values: &[&[u8]], payload: &[u8]) -> bool {
    let Ok(decoded) = messages::decode(values.len(), payload, 0) else {
        return false;
    };
    let mut out = Vec::new();
    values.iter().enumerate().all(|(index, value)| {
        out.clear();
        decoded.append_value(payload, index, &mut out).is_ok() && out == *value
    })
}

fn encode_hex(values: &[&[u8]]) -> Option<Vec<u8>> {
    let width = values.first()?.len();
    if width == 0 || width % 2 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() * width / 2 + 2);
    write_varint(&mut out, (width / 2) as u64);
    for value in values {
        if value.len() != width {
            return None;
        }
        for pair in value.chunks_exact(2) {
            out.push((hex_digit(pair[0])? << 4) | hex_digit(pair[1])?);
        }
    }
    Some(out)
}

/// The value of a lowercase hex digit.
pub(super) fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

pub(super) const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn encode_integers(values: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * 2);
    let mut text = Vec::new();
    for value in values {
        let parsed: i64 = std::str::from_utf8(value).ok()?.parse().ok()?;
        text.clear();
        append_integer(parsed, &mut text);
        if text != *value {
            // `+5`, `007`, `-0`: kept as written.
            return None;
        }
        write_varint(&mut out, zigzag(parsed));
    }
    Some(out)
}

fn append_integer(value: i64, out: &mut Vec<u8>) {
    if value < 0 {
        out.push(b'-');
    }
    append_unsigned(value.unsigned_abs(), out);
}

/// `value` in decimal, without leading zeros.
pub(super) fn append_unsigned(mut value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// `value` in exactly `width` digits, zero-padded (`value` < 10^width).
fn append_padded(value: i64, width: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + width, b'0');
    let mut rest = value;
    for at in (start..start + width).rev() {
        out[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f…]Z` into units of 10^-digits seconds since the epoch.
fn parse_timestamp(value: &[u8], digits: usize) -> Option<i64> {
    let expected_len = 20 + if digits > 0 { digits + 1 } else { 0 };
    if value.len() != expected_len || value[value.len() - 1] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        value[range].iter().try_fold(0i64, |acc, byte| match byte {
            b'0'..=b'9' => Some(acc * 10 + i64::from(byte - b'0')),
            _ => None,
        })
    };
    if value[4] != b'-' || value[7] != b'-' || value[10] != b'T' {
        return None;
    }
    if value[13] != b':' || value[16] != b':' {
        return None;
    }
    let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
    let seconds = days * 86_400 + number(11..13)? * 3600 + number(14..16)? * 60 + number(17..19)?;
    let fraction = if digits > 0 {
        if value[19] != b'.' {
            return None;
        }
        number(20..20 + digits)?
    } else {
        0
    };
    Some(seconds * 10i64.pow(digits as u32) + fraction)
}

fn append_timestamp(units: i64, digits: usize, out: &mut Vec<u8>) {
    let scale = 10i64.pow(digits as u32);
    let (seconds, fraction) = (units.div_euclid(scale), units.rem_euclid(scale));
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        // Not what parsing gives: the round-trip check then refuses the codec.
        out.extend_from_slice(year.to_string().as_bytes());
    } else {
        append_padded(year, 4, out);
    }
    for (separator, value) in [
        (b'-', month),
        (b'-', day),
        (b'T', second_of_day / 3600),
        (b':', second_of_day / 60 % 60),
        (b':', second_of_day % 60),
    ] {
        out.push(separator);
        append_padded(value, 2, out);
    }
    if digits > 0 {
        out.push(b'.');
        append_padded(fraction, digits, out);
    }
    out.push(b'Z');
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn encode_timestamps(values: &[&[u8]]) -> Option<Vec<u8>> {
    let first = values.first()?;
    let digits = first.len().saturating_sub(21);
    if digits > 9 {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() * 3);
    write_varint(&mut out, digits as u64);
    let mut previous = 0i64;
    let mut text = Vec::new();
    for value in values {
        let units = parse_timestamp(value, digits)?;
        text.clear();
        append_timestamp(units, digits, &mut text);
        if text != *value {
            return None;
        }
        write_varint(&mut out, zigzag(units.wrapping_sub(previous)));
        previous = units;
    }
    Some(out)
}

/// A stream ready to hand out values by index; its data are ranges of the block's bytes.
pub(super) enum DecodedStream {
    Plain {
        /// `ends[i]` is where value `i` ends, from the start of the data.
        ends: Vec<usize>,
        data: Range<usize>,
    },
    Hex {
        width: usize,
        data: Range<usize>,
    },
    Timestamp {
        digits: usize,
        units: Vec<i64>,
    },
    Integer(Vec<i64>),
    Dictionary {
        /// `ends[i]` is where distinct value `i` ends, from the start of `data`.
        ends: Vec<usize>,
        data: Range<usize>,
        /// A distinct value's number per value.
        ids: Range<usize>,
    },
    Message(messages::DecodedMessages),
}

fn corrupt(what: &str) -> SourceStoreError {
    SourceStoreError::Corrupt(format!("source stream: {what}"))
}

/// Decodes a stream whose payload starts at `offset` in the block's bytes.
pub(super) fn decode(
    codec: Codec,
    num_values: usize,
    mut payload: &[u8],
    offset: usize,
) -> Result<DecodedStream, SourceStoreError> {
    // Every value costs at least one byte, so a count beyond the payload is damage.
    if num_values > payload.len() {
        return Err(corrupt("more values than bytes"));
    }
    let whole = payload;
    let input = &mut payload;
    let rest = |input: &[u8]| {
        let start = offset + (whole.len() - input.len());
        start..offset + whole.len()
    };
    match codec {
        Codec::Plain => {
            let ends = read_ends(input, num_values)?;
            if ends.last().copied().unwrap_or(0) != input.len() {
                return Err(corrupt("lengths do not add up to the data"));
            }
            Ok(DecodedStream::Plain {
                ends,
                data: rest(input),
            })
        }
        Codec::Dictionary => {
            let num_distinct = read_varint(input)? as usize;
            if num_distinct > 256 {
                return Err(corrupt("a dictionary of more than 256 values"));
            }
            let ends = read_ends(input, num_distinct)?;
            let data_len = ends.last().copied().unwrap_or(0);
            if data_len.checked_add(num_values) != Some(input.len()) {
                return Err(corrupt("dictionary and ids do not fill the payload"));
            }
            if input[data_len..]
                .iter()
                .any(|id| usize::from(*id) >= num_distinct)
            {
                return Err(corrupt("an id past the dictionary"));
            }
            let data = rest(input);
            Ok(DecodedStream::Dictionary {
                ends,
                ids: data.start + data_len..data.end,
                data: data.start..data.start + data_len,
            })
        }
        Codec::Message => {
            let start = rest(input).start;
            Ok(DecodedStream::Message(messages::decode(
                num_values, input, start,
            )?))
        }
        Codec::Hex => {
            let width = read_varint(input)? as usize;
            if width == 0 || width.checked_mul(num_values) != Some(input.len()) {
                return Err(corrupt("hex width does not fit the data"));
            }
            Ok(DecodedStream::Hex {
                width,
                data: rest(input),
            })
        }
        Codec::Timestamp => {
            let digits = read_varint(input)? as usize;
            if digits > 9 {
                return Err(corrupt("more than 9 fraction digits"));
            }
            let mut units = Vec::with_capacity(num_values);
            let mut previous = 0i64;
            for _ in 0..num_values {
                previous = previous.wrapping_add(unzigzag(read_varint(input)?));
                units.push(previous);
            }
            Ok(DecodedStream::Timestamp { digits, units })
        }
        Codec::Integer => {
            let values = (0..num_values)
                .map(|_| read_varint(input).map(unzigzag))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DecodedStream::Integer(values))
        }
    }
}

/// Value `index` of values stored back to back in `data`, value `i` ending at `ends[i]`.
fn nth_value<'a>(
    bytes: &'a [u8],
    ends: &[usize],
    data: &Range<usize>,
    index: usize,
) -> Option<&'a [u8]> {
    let end = *ends.get(index)?;
    let start = index.checked_sub(1).map_or(0, |previous| ends[previous]);
    bytes.get(data.start + start..data.start + end)
}

/// Reads `count` varint lengths into running ends.
fn read_ends(input: &mut &[u8], count: usize) -> Result<Vec<usize>, SourceStoreError> {
    let mut ends = Vec::with_capacity(count.min(input.len()));
    let mut end = 0usize;
    for _ in 0..count {
        end = end
            .checked_add(read_varint(input)? as usize)
            .ok_or_else(|| corrupt("lengths overflow"))?;
        ends.push(end);
    }
    Ok(ends)
}

impl DecodedStream {
    pub(super) fn len(&self) -> usize {
        match self {
            DecodedStream::Plain { ends, .. } => ends.len(),
            DecodedStream::Dictionary { ids, .. } => ids.len(),
            DecodedStream::Message(messages) => messages.len(),
            DecodedStream::Hex { width, data } => data.len() / width,
            DecodedStream::Timestamp { units, .. } => units.len(),
            DecodedStream::Integer(values) => values.len(),
        }
    }

    /// What the decoded stream holds beyond the block's bytes, for the cache's bound.
    pub(super) fn heap_bytes(&self) -> usize {
        let word = std::mem::size_of::<usize>();
        match self {
            DecodedStream::Plain { ends, .. } | DecodedStream::Dictionary { ends, .. } => {
                ends.len() * word
            }
            DecodedStream::Hex { .. } => 0,
            DecodedStream::Timestamp { units, .. } => units.len() * 8,
            DecodedStream::Integer(values) => values.len() * 8,
            DecodedStream::Message(messages) => messages.heap_bytes(),
        }
    }

    /// Appends value `index` as text; `bytes` are the block's.
    pub(super) fn append_value(
        &self,
        bytes: &[u8],
        index: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), SourceStoreError> {
        let missing = || corrupt("a document refers past its stream's end");
        match self {
            DecodedStream::Plain { ends, data } => {
                out.extend_from_slice(nth_value(bytes, ends, data, index).ok_or_else(missing)?);
            }
            DecodedStream::Hex { width, data } => {
                let start = data.start + index * width;
                let value = bytes
                    .get(start..start + width)
                    .filter(|_| start + width <= data.end)
                    .ok_or_else(missing)?;
                for byte in value {
                    out.push(HEX_DIGITS[usize::from(byte >> 4)]);
                    out.push(HEX_DIGITS[usize::from(byte & 0xf)]);
                }
            }
            DecodedStream::Timestamp { digits, units } => {
                append_timestamp(*units.get(index).ok_or_else(missing)?, *digits, out);
            }
            DecodedStream::Integer(values) => {
                append_integer(*values.get(index).ok_or_else(missing)?, out);
            }
            DecodedStream::Dictionary { ends, data, ids } => {
                let id = usize::from(
                    *bytes
                        .get(ids.start + index)
                        .filter(|_| index < ids.len())
                        .ok_or_else(missing)?,
                );
                out.extend_from_slice(nth_value(bytes, ends, data, id).ok_or_else(missing)?);
            }
            DecodedStream::Message(messages) => messages.append_value(bytes, index, out)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[&str], strings: bool) -> Codec {
        let bytes: Vec<&[u8]> = values.iter().map(|value| value.as_bytes()).collect();
        let (codec, payload) = encode(&bytes, strings);
        let decoded = decode(codec, values.len(), &payload, 0).unwrap();
        for (index, value) in values.iter().enumerate() {
            let mut out = Vec::new();
            decoded.append_value(&payload, index, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), *value, "{codec:?}");
        }
        codec
    }

    #[test]
    fn each_shape_gets_its_codec_and_round_trips() {
        let timestamps = [
            "2026-01-01T00:00:00.000087Z",
            "2026-01-01T00:00:00.000475Z",
            "1969-12-31T23:59:59.999999Z",
            "2024-02-29T12:00:00.100000Z",
            "0001-01-01T00:00:00.000000Z",
        ];
        assert_eq!(round_trip(&timestamps, true), Codec::Timestamp);
        assert_eq!(
            round_trip(&["2026-01-01T00:00:19Z", "2026-12-31T23:59:59Z"], true),
            Codec::Timestamp
        );
        assert_eq!(
            round_trip(
                &[
                    "aeb53b340c1039714a69db9873af8965",
                    "00ff00ff00ff00ff00ff00ff00ff00ff"
                ],
                true
            ),
            Codec::Hex
        );
        assert_eq!(
            round_trip(&["0", "-1", "1668422616918", "9223372036854775807"], false),
            Codec::Integer
        );
        let hosts: Vec<String> = (0..40).map(|n| format!("host-{:03}", n % 7)).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        assert_eq!(round_trip(&hosts, true), Codec::Dictionary);
        let messages: Vec<String> = (0..40)
            .map(|n| format!("request {} took {}ms", n * 7919, n % 13))
            .collect();
        let messages: Vec<&str> = messages.iter().map(String::as_str).collect();
        assert_eq!(round_trip(&messages, true), Codec::Message);
        let floats: Vec<String> = (0..40).map(|n| format!("{}.{:02}", n * 31, n)).collect();
        let floats: Vec<&str> = floats.iter().map(String::as_str).collect();
        assert_eq!(round_trip(&floats, false), Codec::Message);
    }

    #[test]
    fn values_a_codec_would_alter_stay_plain() {
        // Not a real date, another digit count, uppercase hex, odd width, a + sign, -0.
        assert_eq!(round_trip(&["2026-02-30T00:00:00Z"], true), Codec::Plain);
        assert_eq!(
            round_trip(&["2026-01-01T00:00:00.1Z", "2026-01-01T00:00:00.12Z"], true),
            Codec::Plain
        );
        assert_eq!(round_trip(&["2026-01-01t00:00:00Z"], true), Codec::Plain);
        assert_eq!(round_trip(&["ABCD"], true), Codec::Plain);
        assert_eq!(round_trip(&["abc"], true), Codec::Plain);
        assert_eq!(round_trip(&["ab", "abcd"], true), Codec::Plain);
        assert_eq!(round_trip(&[""], true), Codec::Plain);
        assert_eq!(round_trip(&["+5"], false), Codec::Plain);
        assert_eq!(round_trip(&["-0"], false), Codec::Plain);
        assert_eq!(round_trip(&["007"], false), Codec::Plain);
        assert_eq!(round_trip(&["1.5", "2e3"], false), Codec::Plain);
        assert_eq!(round_trip(&["99999999999999999999"], false), Codec::Plain);
    }

    #[test]
    fn calendar_conversions_agree_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn damaged_payloads_are_errors() {
        assert!(decode(Codec::Plain, 2, &[5, 1, 0], 0).is_err());
        assert!(decode(Codec::Hex, 1, &[4, 1, 2], 0).is_err());
        assert!(decode(Codec::Timestamp, 2, &[10, 1, 1], 0).is_err());
        // Two distinct values, then an id past them.
        assert!(decode(Codec::Dictionary, 1, &[2, 1, 1, b'a', b'b', 2], 0).is_err());
        assert!(decode(Codec::Dictionary, 2, &[2, 1, 1, b'a', b'b', 1], 0).is_err());
        assert!(decode(Codec::Dictionary, 1, &[2, 1, 1, b'a', b'b', 1], 0).is_ok());
        let decoded = decode(Codec::Integer, 1, &[2], 0).unwrap();
        assert!(decoded.append_value(&[2], 1, &mut Vec::new()).is_err());
    }
}
