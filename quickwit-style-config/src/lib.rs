//! Node and index configuration: parsing (YAML or JSON), defaults, validation with
//! messages that name the offending field, and `${VAR:-default}` interpolation.

mod byte_size;
mod env_interpolation;
mod error;
mod index_config;
mod index_template;
mod node_config;
mod openapi_schemas;
#[cfg(test)]
mod property_tests;

pub use byte_size::ByteSize;
pub use env_interpolation::interpolate_env_vars;
pub use error::ConfigError;
pub use index_config::{
    validate_index_id, BinaryFormat, DatePrecision, DateTimeInputFormat, DocMapping,
    DynamicMapping, FieldMapping, FieldType, IndexConfig, IndexRecord, IndexingSettings,
    LeafFieldType, MergePolicyConfig, Mode, OutputFormat, RetentionPolicy, SearchSettings,
    StableLogMergePolicyConfig, TokenizerName, DOC_ID_FIELD_NAME, DYNAMIC_FIELD_NAME,
    SOURCE_FIELD_NAME,
};
pub use index_template::{IndexTemplate, SHIPPER_TIMESTAMP_FIELD};
pub use node_config::{
    GossipConfig, IndexerConfig, JanitorConfig, NodeConfig, RestConfig, S3Config, SearcherConfig,
    Service, StorageConfig, TenantLimitsScope, TlsConfig,
};

/// The serialisation a config document arrives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFormat {
    Json,
    Yaml,
}

impl ConfigFormat {
    /// Picks the format from a file name or a `Content-Type`, defaulting to YAML, which
    /// also accepts JSON documents.
    pub fn sniff(hint: &str) -> ConfigFormat {
        let hint = hint.to_ascii_lowercase();
        if hint.ends_with(".json") || hint.contains("application/json") {
            ConfigFormat::Json
        } else {
            ConfigFormat::Yaml
        }
    }
}
