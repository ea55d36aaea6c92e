//! Bytes fields as text: base64 (the default) or hex, in documents, queries and hits.

use base64::Engine;
use quarry_config::BinaryFormat;

/// The bytes `text` writes in `format`, or `None` if it is not valid there. Hex takes
/// either case.
pub fn decode_binary(format: BinaryFormat, text: &str) -> Option<Vec<u8>> {
    match format {
        BinaryFormat::Base64 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        BinaryFormat::Hex => {
            let digits = text.as_bytes();
            if !digits.len().is_multiple_of(2) {
                return None;
            }
            digits
                .chunks(2)
                .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
                .collect()
        }
    }
}

/// `bytes` written in `format`; hex in lowercase, as trace ids are.
pub fn encode_binary(format: BinaryFormat, bytes: &[u8]) -> String {
    match format {
        BinaryFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        BinaryFormat::Hex => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut text = String::with_capacity(bytes.len() * 2);
            for byte in bytes {
                text.push(DIGITS[usize::from(byte >> 4)] as char);
                text.push(DIGITS[usize::from(byte & 0x0f)] as char);
            }
            text
        }
    }
}

/// What a value in `format` looks like, for error messages.
pub fn binary_format_name(format: BinaryFormat) -> &'static str {
    match format {
        BinaryFormat::Base64 => "base64-encoded bytes",
        BinaryFormat::Hex => "hex-encoded bytes",
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_text() {
        let trace_id = "8fadc1a606cb0fb39a1de644815ef6d1";
        let bytes = decode_binary(BinaryFormat::Hex, trace_id).unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(encode_binary(BinaryFormat::Hex, &bytes), trace_id);
        assert_eq!(
            decode_binary(BinaryFormat::Hex, "8FADC1"),
            decode_binary(BinaryFormat::Hex, "8fadc1")
        );
        assert_eq!(decode_binary(BinaryFormat::Hex, "abc"), None);
        assert_eq!(decode_binary(BinaryFormat::Hex, "zz"), None);
        assert_eq!(
            decode_binary(BinaryFormat::Base64, "aGVsbG8=").unwrap(),
            b"hello"
        );
        assert_eq!(encode_binary(BinaryFormat::Base64, b"hello"), "aGVsbG8=");
        assert_eq!(decode_binary(BinaryFormat::Base64, "***"), None);
    }
}
