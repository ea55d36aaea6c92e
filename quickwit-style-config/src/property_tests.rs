//! Property tests: index configs come from users over the API and node configs from files,
//! both possibly hostile. For any text, parsing returns a config or an error naming what
//! was wrong, never a panic.

use proptest::prelude::*;

use crate::{ConfigFormat, IndexConfig, NodeConfig};

/// YAML made of the configs' own keys and values, nested, so that parsing gets past the
/// syntax into validation.
fn config_yaml() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("index_id"),
        Just("doc_mapping"),
        Just("field_mappings"),
        Just("name"),
        Just("type"),
        Just("timestamp_field"),
        Just("mode"),
        Just("fast"),
        Just("tokenizer"),
        Just("input_formats"),
        Just("output_format"),
        Just("indexing_settings"),
        Just("commit_timeout_secs"),
        Just("merge_policy"),
        Just("search_settings"),
        Just("default_search_fields"),
        Just("retention"),
        Just("period"),
        Just("node_id"),
        Just("rest"),
        Just("listen_port"),
        Just("tls"),
        Just("cert_path"),
        Just("auth"),
        Just("enabled"),
        Just("bootstrap_api_key"),
        Just("ingest"),
        Just("wal_uri"),
        Just("gossip"),
        Just("interval_ms"),
        Just("peer_seeds"),
        Just("enabled_services"),
        Just("max_request_body"),
        Just("field_mappings"),
        Just("record"),
        Just("fast_precision"),
    ];
    let value = prop_oneof![
        Just("text"),
        Just("datetime"),
        Just("u64"),
        Just("i64"),
        Just("f64"),
        Just("bool"),
        Just("json"),
        Just("object"),
        Just("array<text>"),
        Just("array<array<u64>>"),
        Just("bytes"),
        Just("ip"),
        Just("raw"),
        Just("position"),
        Just("dynamic"),
        Just("strict"),
        Just("-1"),
        Just("18446744073709551616"),
        Just("10 MiB"),
        Just("99999999999 GiB"),
        Just("${QUARRY_UNSET_VARIABLE}"),
        Just("${X:-"),
        Just("[]"),
        Just("{}"),
        Just("~"),
        Just("true"),
        Just("é"),
        Just("1h"),
        Just("unix_timestamp"),
        Just("%Y-%m-%d"),
        Just("\"\""),
    ];
    let line = (0usize..4, key, prop::option::of(value), any::<bool>()).prop_map(
        |(indent, key, value, list_item)| {
            let dash = if list_item { "- " } else { "" };
            match value {
                Some(value) => format!("{}{dash}{key}: {value}\n", "  ".repeat(indent)),
                None => format!("{}{dash}{key}:\n", "  ".repeat(indent)),
            }
        },
    );
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_an_index_config_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = IndexConfig::parse(&bytes, ConfigFormat::Yaml);
        let _ = IndexConfig::parse(&bytes, ConfigFormat::Json);
    }

    #[test]
    fn config_shaped_yaml_is_a_config_or_an_error(yaml in config_yaml()) {
        let _ = IndexConfig::parse(yaml.as_bytes(), ConfigFormat::Yaml);
        if let Ok(config) = NodeConfig::parse_yaml(&yaml) {
            let _ = config.rest_listen_addr();
            let _ = config.auth_enabled();
        }
    }

    #[test]
    fn any_text_is_a_node_config_or_an_error(text in any::<String>()) {
        let _ = NodeConfig::parse_yaml(&text);
    }
}
