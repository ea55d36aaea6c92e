//! Property tests: source blocks come back from object storage, where any byte may be
//! damaged, and the codecs must give back any documents exactly.

use proptest::prelude::*;

use super::block::{encode_block, DecodedBlock};
use super::messages;

/// Log-like lines: a few message shapes with numbers, hex ids and odd digits in them, a
/// handful of hosts, and arbitrary strings, so that every codec gets chosen somewhere.
fn log_line() -> impl Strategy<Value = String> {
    (
        0usize..8,
        any::<u64>(),
        "[0-9a-f]{6,14}",
        "\\PC{0,12}",
        0u8..5,
        prop::option::of(-1000i64..1000),
    )
        .prop_map(|(shape, number, hex, text, host, extra)| {
            let text = text.replace(['\\', '"'], "");
            let message = match shape {
                0 => format!(
                    "Committed offset {number} for partition events-{}",
                    number % 64
                ),
                1 => format!("payment {hex} declined: {text}"),
                2 => format!(
                    "took {}ms from /10.{}.{}.1:{}",
                    number % 999,
                    number % 256,
                    host,
                    number % 65535
                ),
                _ => text,
            };
            let mut line = format!(r#"{{"msg":"{message}","host":"host-{host:03}""#);
            if let Some(extra) = extra {
                line.push_str(&format!(r#", "n" : {extra}, "f": {extra}.50"#));
            }
            line.push('}');
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn blocks_of_log_lines_round_trip(lines in prop::collection::vec(log_line(), 1..200)) {
        let decoded = DecodedBlock::decode(encode_block(&lines)).unwrap();
        let all: Vec<usize> = (0..lines.len()).collect();
        let docs = decoded.docs(&all).unwrap();
        for (doc, line) in docs.iter().zip(&lines) {
            prop_assert_eq!(std::str::from_utf8(doc).unwrap(), line.as_str());
        }
    }

    #[test]
    fn damaged_blocks_decode_or_err(
        lines in prop::collection::vec(log_line(), 1..50),
        position in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let mut block = encode_block(&lines);
        let at = position.index(block.len());
        block[at] ^= flip;
        if let Ok(decoded) = DecodedBlock::decode(block) {
            for doc in 0..decoded.num_docs() {
                let _ = decoded.doc(doc);
            }
        }
    }

    #[test]
    fn any_message_payload_decodes_or_errs(
        num_values in 0usize..40,
        payload in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        if let Ok(decoded) = messages::decode(num_values, &payload, 0) {
            for value in 0..num_values {
                let _ = decoded.append_value(&payload, value, &mut Vec::new());
            }
        }
    }
}
