//! Property tests: ingest bodies come from clients, and log objects from object storage
//! where any byte may be damaged. For any input, mapping a batch accounts for every line,
//! and decoding a log object returns its records or an error, never a panic.

use proptest::prelude::*;
use quarry_common::doc_mapper::DocMapper;
use quarry_config::{ConfigFormat, IndexConfig};

use crate::ingest::map_batch_for_tests as map_batch;
use crate::wal::object_format::{
    decode_header, decode_section, decode_toc, encode_object, ShardBatch, OBJECT_HEADER_LEN,
};

fn mapper(mode: &str) -> DocMapper {
    let config = IndexConfig::parse(
        format!(
            "index_id: props\ndoc_mapping:\n  mode: {mode}\n  field_mappings:\n    - {{name: ts, type: datetime, input_formats: [rfc3339, unix_timestamp], fast: true}}\n    - {{name: n, type: u64, fast: true}}\n    - {{name: tags, type: array<text>, tokenizer: raw}}\n    - {{name: blob, type: bytes}}\n    - {{name: attributes, type: json}}\n  timestamp_field: ts\n"
        )
        .as_bytes(),
        ConfigFormat::Yaml,
    )
    .unwrap();
    DocMapper::new(&config)
}

/// NDJSON-ish lines: the mapping's fields with values of every type, and garbage.
fn ndjson() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("1".to_string()),
        Just("-1".to_string()),
        Just("1.5e300".to_string()),
        Just("18446744073709551616".to_string()),
        Just("\"2026-01-01T00:00:00Z\"".to_string()),
        Just("\"not a date\"".to_string()),
        Just("null".to_string()),
        Just("[\"a\", 1, null]".to_string()),
        Just("{\"x\": {\"y\": [1, {\"z\": true}]}}".to_string()),
        Just("\"aGVsbG8=\"".to_string()),
        any::<String>().prop_map(|text| serde_json::Value::from(text).to_string()),
    ];
    let field = prop_oneof![
        Just("ts"),
        Just("n"),
        Just("tags"),
        Just("blob"),
        Just("attributes"),
        Just("other"),
        Just("attributes.x"),
        Just(""),
    ];
    let line = prop_oneof![
        prop::collection::vec((field, value), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("\"{name}\": {value}"))
                .collect();
            format!("{{{}}}", body.join(", ")).into_bytes()
        }),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join(&b'\n'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn every_line_of_any_body_is_accepted_or_rejected(body in ndjson(), strict in any::<bool>()) {
        let mapper = mapper(if strict { "strict" } else { "dynamic" });
        let batch = map_batch(&mapper, &body);
        let response = &batch.response;
        prop_assert_eq!(
            response.num_ingested_docs + response.num_rejected_docs,
            response.num_docs_for_processing
        );
        prop_assert_eq!(batch.docs.len() as u64, response.num_ingested_docs);
    }

    #[test]
    fn any_bytes_are_a_log_object_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_every_section("00000000000000000001.wal", &bytes);
    }

    #[test]
    fn a_log_object_damaged_anywhere_decodes_or_errs(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..5),
        position in any::<prop::sample::Index>(),
        flip in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let (mut object, _) = encode_object(
            1,
            &[
                ShardBatch { shard: "a_01", first: 3, prev_last: 2, payloads: payloads.clone() },
                ShardBatch { shard: "b_01", first: 1, prev_last: 0, payloads },
            ],
        )
        .unwrap();
        let at = position.index(object.len());
        object[at] ^= flip;
        object.truncate(object.len() - cut.index(4));
        decode_every_section("00000000000000000001.wal", &object);
    }
}

/// Decodes the header, the table and each section as a reader would, clamping the ranges
/// it asks for to the object as storage does.
fn decode_every_section(key: &str, object: &[u8]) {
    let Ok(header) = decode_header(key, object) else {
        return;
    };
    let toc_end = (OBJECT_HEADER_LEN + header.toc_len as usize).min(object.len());
    let Ok(sections) = decode_toc(
        key,
        &header,
        &object[OBJECT_HEADER_LEN.min(toc_end)..toc_end],
    ) else {
        return;
    };
    for section in sections {
        let start = usize::try_from(section.offset)
            .unwrap_or(usize::MAX)
            .min(object.len());
        let end = start.saturating_add(section.len as usize).min(object.len());
        let _ = decode_section(key, &section, &object[start..end]);
    }
}
