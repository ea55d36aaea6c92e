//! Index templates, in Quickwit's shape: the config an index gets when a `_bulk` request
//! creates it on first use (`ingest.auto_create_indexes`), chosen by its id.

use serde::{Deserialize, Serialize};

use crate::index_config::{
    DocMapping, FieldMapping, FieldType, IndexingSettings, LeafFieldType, RetentionPolicy,
    SearchSettings,
};
use crate::{ConfigError, IndexConfig};

/// The timestamp field of an index made from a template that names none: what
/// Elasticsearch shippers (Fluent Bit, Vector, rsyslog, Beats) put in every document.
pub const SHIPPER_TIMESTAMP_FIELD: &str = "@timestamp";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexTemplate {
    pub template_id: String,
    /// `*` patterns (`logs-*`); an index id matching one of them is made from this template.
    pub index_id_patterns: Vec<String>,
    /// Where indexes made from the template live (`{index_root_uri}/{index_id}`); unset,
    /// the node's `default_index_root_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_root_uri: Option<String>,
    /// Among templates matching one id, the highest priority wins (then the first listed).
    #[serde(default)]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub doc_mapping: DocMapping,
    #[serde(default)]
    pub indexing_settings: IndexingSettings,
    #[serde(default)]
    pub search_settings: SearchSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
}

impl IndexTemplate {
    /// The config of index `index_id` made from this template. A doc mapping without a
    /// timestamp field gets `@timestamp` (a fast datetime), as shippers send it.
    pub fn index_config(&self, index_id: &str) -> Result<IndexConfig, ConfigError> {
        let mut doc_mapping = self.doc_mapping.clone();
        if doc_mapping.timestamp_field.is_none() {
            if !doc_mapping
                .field_mappings
                .iter()
                .any(|mapping| mapping.name == SHIPPER_TIMESTAMP_FIELD)
            {
                doc_mapping.field_mappings.push(shipper_timestamp_mapping());
            }
            doc_mapping.timestamp_field = Some(SHIPPER_TIMESTAMP_FIELD.to_string());
        }
        let config = IndexConfig {
            version: "0.1".to_string(),
            index_id: index_id.to_string(),
            index_uri: self
                .index_root_uri
                .as_ref()
                .map(|root| format!("{}/{index_id}", root.trim_end_matches('/'))),
            doc_mapping,
            indexing_settings: self.indexing_settings.clone(),
            search_settings: self.search_settings.clone(),
            retention: self.retention.clone(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the template as the node starts: its patterns, and the config it makes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let field = |name: &str| format!("index_templates[{}].{name}", self.template_id);
        if self.template_id.trim().is_empty() {
            return Err(ConfigError::invalid(
                "index_templates.template_id",
                "must not be empty",
            ));
        }
        if self.index_id_patterns.is_empty() {
            return Err(ConfigError::invalid(
                field("index_id_patterns"),
                "needs at least one pattern, such as `logs-*`",
            ));
        }
        for pattern in &self.index_id_patterns {
            // A pattern must name ids an index may have: try it with its stars filled in.
            let example = pattern.replace('*', "any");
            crate::validate_index_id(&example).map_err(|error| {
                ConfigError::invalid(
                    field("index_id_patterns"),
                    format!("`{pattern}` cannot match a valid index id: {error}"),
                )
            })?;
        }
        let example = self.index_id_patterns[0].replace('*', "any");
        self.index_config(&example).map(|_| ()).map_err(|error| {
            ConfigError::invalid(
                field("doc_mapping"),
                format!("the template makes an invalid index config: {error}"),
            )
        })
    }
}

fn shipper_timestamp_mapping() -> FieldMapping {
    FieldMapping {
        name: SHIPPER_TIMESTAMP_FIELD.to_string(),
        field_type: FieldType::Leaf(LeafFieldType::Datetime),
        description: None,
        indexed: true,
        stored: true,
        fast: true,
        tokenizer: None,
        record: None,
        fieldnorms: false,
        input_formats: Vec::new(),
        fast_precision: None,
        expand_dots: None,
        input_format: None,
        output_format: None,
        field_mappings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> IndexTemplate {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_template_without_timestamp_field_times_documents_by_at_timestamp() {
        let template = template("template_id: logs\nindex_id_patterns: [logs-*]\n");
        template.validate().unwrap();
        let config = template.index_config("logs-nginx").unwrap();
        assert_eq!(config.index_id, "logs-nginx");
        assert_eq!(
            config.doc_mapping.timestamp_field.as_deref(),
            Some("@timestamp")
        );
        let mapping = &config.doc_mapping.field_mappings[0];
        assert_eq!(mapping.name, "@timestamp");
        assert!(mapping.fast);
        assert_eq!(config.index_uri, None);
    }

    #[test]
    fn a_template_keeps_its_own_mapping_and_root() {
        let template = template(
            "template_id: app\nindex_id_patterns: [app-*]\nindex_root_uri: s3://bucket/indexes/\ndoc_mapping:\n  timestamp_field: ts\n  field_mappings:\n    - name: ts\n      type: datetime\n      fast: true\n",
        );
        let config = template.index_config("app-1").unwrap();
        assert_eq!(config.doc_mapping.timestamp_field.as_deref(), Some("ts"));
        assert_eq!(config.doc_mapping.field_mappings.len(), 1);
        assert_eq!(
            config.index_uri.as_deref(),
            Some("s3://bucket/indexes/app-1")
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_field_named() {
        let no_pattern = template("template_id: t\nindex_id_patterns: []\n");
        assert!(no_pattern
            .validate()
            .unwrap_err()
            .to_string()
            .contains("index_templates[t].index_id_patterns"));
        let bad_pattern = template("template_id: t\nindex_id_patterns: ['-*']\n");
        assert!(bad_pattern.validate().is_err());
        let bad_mapping = template(
            "template_id: t\nindex_id_patterns: [t-*]\ndoc_mapping:\n  timestamp_field: missing\n",
        );
        assert!(bad_mapping
            .validate()
            .unwrap_err()
            .to_string()
            .contains("index_templates[t].doc_mapping"));
    }
}
