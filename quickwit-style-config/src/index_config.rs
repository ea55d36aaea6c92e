use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ByteSize, ConfigError, ConfigFormat};

/// The catch-all JSON field unknown keys land in when the mapping mode is `dynamic`.
pub const DYNAMIC_FIELD_NAME: &str = "_dynamic";
/// Where the original document is kept when `store_source` is on.
pub const SOURCE_FIELD_NAME: &str = "_source";
/// The id a client gave a document (`_bulk`'s `_id`), stored to be returned with hits.
pub const DOC_ID_FIELD_NAME: &str = "_id";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    #[serde(default = "default_version")]
    pub version: String,
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9._-]{2,254}$")]
    pub index_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_uri: Option<String>,
    #[serde(default)]
    pub doc_mapping: DocMapping,
    #[serde(default)]
    pub indexing_settings: IndexingSettings,
    #[serde(default)]
    pub search_settings: SearchSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
}

fn default_version() -> String {
    "0.1".to_string()
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Unknown fields go to a catch-all JSON field and stay searchable.
    #[default]
    Dynamic,
    /// A document with an unknown field is rejected.
    Strict,
    /// Unknown fields are dropped.
    Lenient,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocMapping {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub dynamic_mapping: DynamicMapping,
    #[serde(default)]
    pub field_mappings: Vec<FieldMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_field: Option<String>,
    #[serde(default)]
    pub tag_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Keeps each document exactly as it was sent, as Elasticsearch does, and hits return
    /// it byte for byte. The source is then the only stored copy of the fields. Off, hits
    /// are rebuilt from stored fields (dates come back in their output format).
    #[serde(default = "default_true")]
    pub store_source: bool,
}

/// How fields that are not in `field_mappings` are indexed in `dynamic` mode. The default
/// follows Elasticsearch: strings are full-text searchable and also fast for aggregations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicMapping {
    #[serde(default = "default_true")]
    pub indexed: bool,
    #[serde(default = "default_true")]
    pub stored: bool,
    #[serde(default = "default_true")]
    pub fast: bool,
    #[serde(default = "default_dynamic_tokenizer")]
    pub tokenizer: TokenizerName,
    #[serde(default = "default_position")]
    pub record: IndexRecord,
    #[serde(default = "default_true")]
    pub expand_dots: bool,
}

fn default_dynamic_tokenizer() -> TokenizerName {
    TokenizerName::Default
}
fn default_position() -> IndexRecord {
    IndexRecord::Position
}

impl Default for DynamicMapping {
    fn default() -> Self {
        DynamicMapping {
            indexed: true,
            stored: true,
            fast: true,
            tokenizer: default_dynamic_tokenizer(),
            record: default_position(),
            expand_dots: true,
        }
    }
}

/// A field's type as written in configs: `text`, `u64`, …, `object`, or `array<text>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Leaf(LeafFieldType),
    Array(LeafFieldType),
    Object,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafFieldType {
    Text,
    U64,
    I64,
    F64,
    Bool,
    Datetime,
    Ip,
    Bytes,
    Json,
}

impl LeafFieldType {
    pub(crate) const ALL: [(&'static str, LeafFieldType); 9] = [
        ("text", LeafFieldType::Text),
        ("u64", LeafFieldType::U64),
        ("i64", LeafFieldType::I64),
        ("f64", LeafFieldType::F64),
        ("bool", LeafFieldType::Bool),
        ("datetime", LeafFieldType::Datetime),
        ("ip", LeafFieldType::Ip),
        ("bytes", LeafFieldType::Bytes),
        ("json", LeafFieldType::Json),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, leaf)| *leaf == self)
            .map(|(name, _)| *name)
            .unwrap_or("unknown")
    }
}

impl FieldType {
    pub fn leaf(self) -> Option<LeafFieldType> {
        match self {
            FieldType::Leaf(leaf) | FieldType::Array(leaf) => Some(leaf),
            FieldType::Object => None,
        }
    }
}

impl FromStr for FieldType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse_leaf = |name: &str| {
            LeafFieldType::ALL
                .iter()
                .find(|(candidate, _)| *candidate == name)
                .map(|(_, leaf)| *leaf)
        };
        if text == "object" {
            return Ok(FieldType::Object);
        }
        if let Some(inner) = text
            .strip_prefix("array<")
            .and_then(|rest| rest.strip_suffix('>'))
        {
            return parse_leaf(inner.trim()).map(FieldType::Array).ok_or_else(|| {
                format!("unknown array element type `{inner}` (expected one of text, u64, i64, f64, bool, datetime, ip, bytes, json)")
            });
        }
        parse_leaf(text).map(FieldType::Leaf).ok_or_else(|| {
            format!("unknown field type `{text}` (expected one of text, u64, i64, f64, bool, datetime, ip, bytes, json, object, array<…>)")
        })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Leaf(leaf) => f.write_str(leaf.name()),
            FieldType::Array(leaf) => write!(f, "array<{}>", leaf.name()),
            FieldType::Object => f.write_str("object"),
        }
    }
}

impl Serialize for FieldType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerName {
    /// The whole value is one term: ids, enums, host names.
    Raw,
    /// Splits on non-alphanumeric characters, lowercases, drops tokens over 255 bytes.
    Default,
    /// `default` followed by English stemming.
    EnStem,
    /// Splits on whitespace only, keeps case.
    Whitespace,
}

impl TokenizerName {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenizerName::Raw => "raw",
            TokenizerName::Default => "default",
            TokenizerName::EnStem => "en_stem",
            TokenizerName::Whitespace => "whitespace",
        }
    }
}

/// How a bytes field's values are written as text: in documents and queries
/// (`input_format`), and in hits (`output_format`). Quickwit's names and default.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BinaryFormat {
    #[default]
    Base64,
    /// Trace and span ids are usually hex: half the bytes of their text.
    Hex,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IndexRecord {
    /// Doc ids only.
    Basic,
    /// Doc ids and term frequencies (better scoring).
    Freq,
    /// Doc ids, frequencies and positions (phrase queries).
    Position,
}

#[derive(
    Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DatePrecision {
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

/// How a datetime arrives in documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DateTimeInputFormat {
    Rfc3339,
    Rfc2822,
    Iso8601,
    /// A number of seconds, milliseconds, microseconds or nanoseconds since the epoch,
    /// told apart by magnitude.
    UnixTimestamp,
    UnixTimestampSecs,
    UnixTimestampMillis,
    UnixTimestampMicros,
    UnixTimestampNanos,
    /// A `strptime`-style pattern such as `%Y-%m-%d %H:%M:%S`.
    Strptime(String),
}

/// The `strptime` directives the doc mapper knows how to parse.
pub const STRPTIME_DIRECTIVES: &[char] = &[
    'Y', 'y', 'm', 'd', 'e', 'H', 'M', 'S', 'f', 'z', 'b', 'B', 'j', 'T', 'D', 'F', 'p', 'I', 'a',
    'A', '%',
];

impl FromStr for DateTimeInputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "rfc3339" => DateTimeInputFormat::Rfc3339,
            "rfc2822" => DateTimeInputFormat::Rfc2822,
            "iso8601" => DateTimeInputFormat::Iso8601,
            "unix_timestamp" => DateTimeInputFormat::UnixTimestamp,
            "unix_timestamp_secs" => DateTimeInputFormat::UnixTimestampSecs,
            "unix_timestamp_millis" => DateTimeInputFormat::UnixTimestampMillis,
            "unix_timestamp_micros" => DateTimeInputFormat::UnixTimestampMicros,
            "unix_timestamp_nanos" => DateTimeInputFormat::UnixTimestampNanos,
            pattern if pattern.contains('%') => {
                let mut chars = pattern.chars();
                while let Some(c) = chars.next() {
                    if c == '%' {
                        match chars.next() {
                            Some(directive) if STRPTIME_DIRECTIVES.contains(&directive) => {}
                            Some(directive) => {
                                return Err(format!(
                                    "unsupported directive `%{directive}` in date format `{pattern}`"
                                ))
                            }
                            None => return Err(format!("date format `{pattern}` ends with `%`")),
                        }
                    }
                }
                DateTimeInputFormat::Strptime(pattern.to_string())
            }
            other => {
                return Err(format!(
                    "unknown date format `{other}` (expected rfc3339, rfc2822, iso8601, unix_timestamp[_secs|_millis|_micros|_nanos] or a strptime pattern like `%Y-%m-%d %H:%M:%S`)"
                ))
            }
        })
    }
}

impl fmt::Display for DateTimeInputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateTimeInputFormat::Rfc3339 => "rfc3339",
            DateTimeInputFormat::Rfc2822 => "rfc2822",
            DateTimeInputFormat::Iso8601 => "iso8601",
            DateTimeInputFormat::UnixTimestamp => "unix_timestamp",
            DateTimeInputFormat::UnixTimestampSecs => "unix_timestamp_secs",
            DateTimeInputFormat::UnixTimestampMillis => "unix_timestamp_millis",
            DateTimeInputFormat::UnixTimestampMicros => "unix_timestamp_micros",
            DateTimeInputFormat::UnixTimestampNanos => "unix_timestamp_nanos",
            DateTimeInputFormat::Strptime(pattern) => pattern,
        })
    }
}

impl Serialize for DateTimeInputFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DateTimeInputFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How hits show a field's values (`output_format`): bytes fields take `base64` or `hex`,
/// datetime fields a date format as Quickwit names them (`rfc3339`, `rfc2822`, `iso8601`,
/// `unix_timestamp_secs|millis|micros|nanos` or a strptime pattern).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Binary(BinaryFormat),
    DateTime(DateTimeInputFormat),
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "base64" => return Ok(OutputFormat::Binary(BinaryFormat::Base64)),
            "hex" => return Ok(OutputFormat::Binary(BinaryFormat::Hex)),
            // Unambiguous on input (told apart by magnitude), but hits need one unit.
            "unix_timestamp" => {}
            text => {
                if let Ok(format) = text.parse::<DateTimeInputFormat>() {
                    return Ok(OutputFormat::DateTime(format));
                }
            }
        }
        Err(format!(
            "unknown output_format `{text}` (expected base64 or hex for bytes fields; rfc3339, rfc2822, iso8601, unix_timestamp_secs, unix_timestamp_millis, unix_timestamp_micros, unix_timestamp_nanos or a strptime pattern like `%Y-%m-%d %H:%M:%S` for datetime fields)"
        ))
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputFormat::Binary(BinaryFormat::Base64) => f.write_str("base64"),
            OutputFormat::Binary(BinaryFormat::Hex) => f.write_str("hex"),
            OutputFormat::DateTime(format) => format.fmt(f),
        }
    }
}

impl Serialize for OutputFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OutputFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One entry of `field_mappings`. Options that do not apply to the field's type are
/// rejected by validation rather than silently ignored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_true")]
    pub indexed: bool,
    #[serde(default = "default_true")]
    pub stored: bool,
    #[serde(default)]
    pub fast: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<IndexRecord>,
    #[serde(default)]
    pub fieldnorms: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_formats: Vec<DateTimeInputFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_precision: Option<DatePrecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand_dots: Option<bool>,
    /// Bytes fields: how documents and queries write the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format: Option<BinaryFormat>,
    /// How hits show the values: bytes fields in base64 or hex, datetime fields in a date
    /// format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub field_mappings: Vec<FieldMapping>,
}

impl FieldMapping {
    /// The tokenizer in effect: text and json fields default to `default` (json: `raw`).
    pub fn effective_tokenizer(&self) -> TokenizerName {
        self.tokenizer.unwrap_or(match self.field_type.leaf() {
            Some(LeafFieldType::Json) => TokenizerName::Raw,
            _ => TokenizerName::Default,
        })
    }

    /// Positions are recorded by default for tokenized text so that phrase queries work
    /// out of the box, as they do in Elasticsearch; a raw token has no inner positions.
    pub fn effective_record(&self) -> IndexRecord {
        self.record.unwrap_or(match self.effective_tokenizer() {
            TokenizerName::Raw => IndexRecord::Basic,
            _ => IndexRecord::Position,
        })
    }

    pub fn effective_input_formats(&self) -> Vec<DateTimeInputFormat> {
        if self.input_formats.is_empty() {
            vec![
                DateTimeInputFormat::Rfc3339,
                DateTimeInputFormat::UnixTimestamp,
            ]
        } else {
            self.input_formats.clone()
        }
    }

    /// Sub-second ordering matters for logs, so the fast column keeps milliseconds unless told.
    pub fn effective_fast_precision(&self) -> DatePrecision {
        self.fast_precision.unwrap_or(DatePrecision::Milliseconds)
    }

    pub fn effective_expand_dots(&self) -> bool {
        self.expand_dots.unwrap_or(true)
    }
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexingSettings {
    #[serde(default = "default_commit_timeout_secs")]
    pub commit_timeout_secs: u64,
    #[serde(default = "default_split_num_docs_target")]
    pub split_num_docs_target: u64,
    #[serde(default = "default_docstore_blocksize")]
    pub docstore_blocksize: ByteSize,
    #[serde(default = "default_docstore_compression_level")]
    pub docstore_compression_level: i32,
    #[serde(default)]
    pub merge_policy: MergePolicyConfig,
    #[serde(default)]
    pub resources: IndexingResources,
}

/// Which immature splits merge, in Quickwit's shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MergePolicyConfig {
    StableLog(StableLogMergePolicyConfig),
    NoMerge,
}

impl Default for MergePolicyConfig {
    fn default() -> Self {
        MergePolicyConfig::StableLog(StableLogMergePolicyConfig::default())
    }
}

/// Splits are grouped in levels by size (`min_level_num_docs`, then each level
/// `merge_factor` times bigger); `merge_factor` splits of a level merge into one of the next,
/// at most `max_merge_factor` at once, until the result reaches `split_num_docs_target` or
/// the splits are older than `maturation_period`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StableLogMergePolicyConfig {
    #[serde(default = "default_min_level_num_docs")]
    pub min_level_num_docs: u64,
    #[serde(default = "default_merge_factor")]
    pub merge_factor: usize,
    #[serde(default = "default_max_merge_factor")]
    pub max_merge_factor: usize,
    #[serde(default = "default_maturation_period")]
    pub maturation_period: String,
}

fn default_min_level_num_docs() -> u64 {
    100_000
}
fn default_merge_factor() -> usize {
    10
}
fn default_max_merge_factor() -> usize {
    12
}
fn default_maturation_period() -> String {
    "48h".to_string()
}

impl Default for StableLogMergePolicyConfig {
    fn default() -> Self {
        StableLogMergePolicyConfig {
            min_level_num_docs: default_min_level_num_docs(),
            merge_factor: default_merge_factor(),
            max_merge_factor: default_max_merge_factor(),
            maturation_period: default_maturation_period(),
        }
    }
}

impl StableLogMergePolicyConfig {
    pub fn maturation_period_secs(&self) -> Result<u64, String> {
        parse_duration_secs(&self.maturation_period)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let path = "indexing_settings.merge_policy";
        if self.merge_factor < 2 {
            return Err(ConfigError::invalid(
                format!("{path}.merge_factor"),
                "must be at least 2",
            ));
        }
        if self.max_merge_factor < self.merge_factor {
            return Err(ConfigError::invalid(
                format!("{path}.max_merge_factor"),
                format!("must be at least merge_factor ({})", self.merge_factor),
            ));
        }
        self.maturation_period_secs()
            .map_err(|reason| ConfigError::invalid(format!("{path}.maturation_period"), reason))?;
        Ok(())
    }
}

fn default_commit_timeout_secs() -> u64 {
    60
}
fn default_split_num_docs_target() -> u64 {
    10_000_000
}
fn default_docstore_blocksize() -> ByteSize {
    ByteSize::mib(1)
}
/// Quickwit uses 8. On logs, 6 stores 1.3% more bytes in all (3% more doc store) and
/// indexes about 13% faster: zstd at 8 was a fifth of all indexing CPU (README, Measured).
fn default_docstore_compression_level() -> i32 {
    6
}

impl Default for IndexingSettings {
    fn default() -> Self {
        IndexingSettings {
            commit_timeout_secs: default_commit_timeout_secs(),
            split_num_docs_target: default_split_num_docs_target(),
            docstore_blocksize: default_docstore_blocksize(),
            docstore_compression_level: default_docstore_compression_level(),
            merge_policy: MergePolicyConfig::default(),
            resources: IndexingResources::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexingResources {
    #[serde(default = "default_heap_size")]
    pub heap_size: ByteSize,
}

fn default_heap_size() -> ByteSize {
    ByteSize::mib(256)
}

impl Default for IndexingResources {
    fn default() -> Self {
        IndexingResources {
            heap_size: default_heap_size(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    #[serde(default)]
    pub default_search_fields: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// e.g. `30 days`, `12 hours`.
    pub period: String,
    #[serde(default = "default_retention_schedule")]
    pub schedule: String,
}

fn default_retention_schedule() -> String {
    "hourly".to_string()
}

impl RetentionPolicy {
    pub fn period_secs(&self) -> Result<u64, String> {
        parse_duration_secs(&self.period)
    }
}

fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split_at);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (expected e.g. `30 days`)"))?;
    let unit_secs = match unit.trim().trim_end_matches('s') {
        "sec" | "second" | "" => 1,
        "min" | "minute" => 60,
        "hour" | "h" => 3_600,
        "m" => 60,
        "day" | "d" => 86_400,
        "week" | "w" => 7 * 86_400,
        "month" => 30 * 86_400,
        "year" | "y" => 365 * 86_400,
        other => return Err(format!("unknown duration unit `{other}` in `{text}`")),
    };
    Ok(number * unit_secs)
}

impl IndexConfig {
    /// Parses and validates an index config. YAML parsing also accepts JSON.
    pub fn parse(bytes: &[u8], format: ConfigFormat) -> Result<IndexConfig, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ConfigError::Parse("config is not valid UTF-8".to_string()))?;
        let text = crate::interpolate_env_vars(text)?;
        let config: IndexConfig =
            match format {
                ConfigFormat::Json => serde_json::from_str(&text)
                    .map_err(|err| ConfigError::Parse(err.to_string()))?,
                ConfigFormat::Yaml => serde_yaml_ng::from_str(&text)
                    .map_err(|err| ConfigError::Parse(err.to_string()))?,
            };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_index_id(&self.index_id)?;
        let fields = self.doc_mapping.validate()?;
        let settings = &self.indexing_settings;
        if settings.commit_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "indexing_settings.commit_timeout_secs",
                "must be at least 1",
            ));
        }
        if settings.split_num_docs_target == 0 {
            return Err(ConfigError::invalid(
                "indexing_settings.split_num_docs_target",
                "must be at least 1",
            ));
        }
        if settings.resources.heap_size < ByteSize::mib(16) {
            return Err(ConfigError::invalid(
                "indexing_settings.resources.heap_size",
                format!(
                    "{} is below the 16MiB minimum the indexer needs",
                    settings.resources.heap_size
                ),
            ));
        }
        if let MergePolicyConfig::StableLog(policy) = &settings.merge_policy {
            policy.validate()?;
        }
        if !(1..=22).contains(&settings.docstore_compression_level) {
            return Err(ConfigError::invalid(
                "indexing_settings.docstore_compression_level",
                "must be a zstd level between 1 and 22",
            ));
        }
        for (position, name) in self
            .search_settings
            .default_search_fields
            .iter()
            .enumerate()
        {
            let path = format!("search_settings.default_search_fields[{position}]");
            // A path inside a json field (Quickwit's OTEL logs search `body.message`).
            let json_parent =
                name.char_indices()
                    .filter(|(_, c)| *c == '.')
                    .find_map(|(dot, _)| {
                        fields.get(&name[..dot]).filter(|mapping| {
                            mapping.field_type == FieldType::Leaf(LeafFieldType::Json)
                        })
                    });
            match fields.get(name.as_str()).or(json_parent) {
                Some(mapping) if !mapping.indexed => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("field `{name}` is not indexed, so it cannot be searched"),
                    ))
                }
                Some(_) => {}
                None if self.doc_mapping.mode == Mode::Dynamic => {}
                None => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("field `{name}` is not in field_mappings"),
                    ))
                }
            }
        }
        if let Some(retention) = &self.retention {
            retention
                .period_secs()
                .map_err(|message| ConfigError::invalid("retention.period", message))?;
            if !matches!(
                retention.schedule.as_str(),
                "hourly" | "daily" | "weekly" | "monthly"
            ) {
                return Err(ConfigError::invalid(
                    "retention.schedule",
                    format!(
                        "unknown schedule `{}` (expected hourly, daily, weekly or monthly)",
                        retention.schedule
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Index ids become URL path segments and storage prefixes, so they are kept to a safe
/// alphabet, as in Quickwit.
pub fn validate_index_id(index_id: &str) -> Result<(), ConfigError> {
    let valid_chars = index_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let starts_with_letter = index_id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter || !valid_chars || !(3..=255).contains(&index_id.len()) {
        return Err(ConfigError::invalid(
            "index_id",
            format!("`{index_id}` is not a valid index id: it must start with a letter and contain 3 to 255 ASCII letters, digits, `-`, `_` or `.`"),
        ));
    }
    Ok(())
}

impl DocMapping {
    /// Leaf fields by dotted path (objects flattened), in declaration order.
    pub fn leaf_fields(&self) -> Vec<(String, &FieldMapping)> {
        fn walk<'a>(
            prefix: &str,
            mappings: &'a [FieldMapping],
            out: &mut Vec<(String, &'a FieldMapping)>,
        ) {
            for mapping in mappings {
                let path = if prefix.is_empty() {
                    mapping.name.clone()
                } else {
                    format!("{prefix}.{}", mapping.name)
                };
                match mapping.field_type {
                    FieldType::Object => walk(&path, &mapping.field_mappings, out),
                    _ => out.push((path, mapping)),
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.field_mappings, &mut out);
        out
    }

    /// Checks every rule and returns the leaf fields by path.
    fn validate(&self) -> Result<HashMap<String, &FieldMapping>, ConfigError> {
        validate_mappings("doc_mapping.field_mappings", &self.field_mappings)?;
        let leaves = self.leaf_fields();
        let mut by_path = HashMap::new();
        for (path, mapping) in &leaves {
            if by_path.insert(path.clone(), *mapping).is_some() {
                return Err(ConfigError::invalid(
                    "doc_mapping.field_mappings",
                    format!("field `{path}` is mapped more than once"),
                ));
            }
        }
        if let Some(timestamp_field) = &self.timestamp_field {
            let path = "doc_mapping.timestamp_field";
            let mapping = by_path.get(timestamp_field.as_str()).ok_or_else(|| {
                ConfigError::invalid(
                    path,
                    format!("field `{timestamp_field}` is not in field_mappings"),
                )
            })?;
            if mapping.field_type != FieldType::Leaf(LeafFieldType::Datetime) {
                return Err(ConfigError::invalid(
                    path,
                    format!(
                        "field `{timestamp_field}` has type `{}`, but the timestamp field must be a `datetime`",
                        mapping.field_type
                    ),
                ));
            }
            if !mapping.fast {
                return Err(ConfigError::invalid(
                    path,
                    format!("field `{timestamp_field}` must be `fast: true`: time pruning and sorting read its column"),
                ));
            }
        }
        let mut seen_tags = BTreeSet::new();
        for (position, tag_field) in self.tag_fields.iter().enumerate() {
            let path = format!("doc_mapping.tag_fields[{position}]");
            if !seen_tags.insert(tag_field) {
                return Err(ConfigError::invalid(
                    path,
                    format!("`{tag_field}` is listed twice"),
                ));
            }
            let mapping = by_path.get(tag_field.as_str()).ok_or_else(|| {
                ConfigError::invalid(
                    &path,
                    format!("field `{tag_field}` is not in field_mappings"),
                )
            })?;
            let taggable = match mapping.field_type {
                FieldType::Leaf(LeafFieldType::Text) | FieldType::Array(LeafFieldType::Text) => {
                    mapping.effective_tokenizer() == TokenizerName::Raw
                }
                FieldType::Leaf(leaf) | FieldType::Array(leaf) => {
                    matches!(
                        leaf,
                        LeafFieldType::U64 | LeafFieldType::I64 | LeafFieldType::Bool
                    )
                }
                FieldType::Object => false,
            };
            if !taggable || !mapping.indexed {
                return Err(ConfigError::invalid(
                    path,
                    format!("field `{tag_field}` cannot be a tag: tags must be indexed text with the `raw` tokenizer, u64, i64 or bool"),
                ));
            }
        }
        if let Some(partition_key) = &self.partition_key {
            if !by_path.contains_key(partition_key.as_str()) {
                return Err(ConfigError::invalid(
                    "doc_mapping.partition_key",
                    format!("field `{partition_key}` is not in field_mappings"),
                ));
            }
        }
        Ok(by_path)
    }
}

fn validate_mappings(parent_path: &str, mappings: &[FieldMapping]) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    for (position, mapping) in mappings.iter().enumerate() {
        let path = format!("{parent_path}[{position}]");
        validate_field_name(&path, &mapping.name)?;
        if !names.insert(mapping.name.as_str()) {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                format!("field `{}` is mapped more than once", mapping.name),
            ));
        }
        validate_field_options(&path, mapping)?;
        if mapping.field_type == FieldType::Object {
            if mapping.field_mappings.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{path}.field_mappings"),
                    format!(
                        "object field `{}` needs at least one sub-field",
                        mapping.name
                    ),
                ));
            }
            validate_mappings(&format!("{path}.field_mappings"), &mapping.field_mappings)?;
        } else if !mapping.field_mappings.is_empty() {
            return Err(ConfigError::invalid(
                format!("{path}.field_mappings"),
                format!(
                    "only `object` fields have sub-fields, `{}` is a `{}`",
                    mapping.name, mapping.field_type
                ),
            ));
        }
    }
    Ok(())
}

fn validate_field_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let problem = if name.is_empty() {
        Some("field name is empty".to_string())
    } else if name.starts_with('_') {
        Some(format!(
            "field name `{name}` starts with `_`, which is reserved for internal fields"
        ))
    } else if name.contains('.') {
        Some(format!("field name `{name}` contains `.`: map nested keys with an `object` field, or use a `json` field"))
    } else if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | '$' | '/'))
    {
        Some(format!(
            "field name `{name}` may only contain letters, digits, `_`, `-`, `@`, `$` and `/`"
        ))
    } else {
        None
    };
    match problem {
        Some(message) => Err(ConfigError::invalid(format!("{path}.name"), message)),
        None => Ok(()),
    }
}

fn validate_field_options(path: &str, mapping: &FieldMapping) -> Result<(), ConfigError> {
    let type_name = mapping.field_type.to_string();
    let leaf = mapping.field_type.leaf();
    let reject = |option: &str, applies_to: &str| {
        Err(ConfigError::invalid(
            format!("{path}.{option}"),
            format!(
                "`{option}` does not apply to field `{}` of type `{type_name}` (only to {applies_to})",
                mapping.name
            ),
        ))
    };
    let is_text_like = matches!(leaf, Some(LeafFieldType::Text | LeafFieldType::Json));
    if mapping.tokenizer.is_some() && !is_text_like {
        return reject("tokenizer", "text and json fields");
    }
    if mapping.record.is_some() && !is_text_like {
        return reject("record", "text and json fields");
    }
    if mapping.fieldnorms && !is_text_like {
        return reject("fieldnorms", "text and json fields");
    }
    if leaf != Some(LeafFieldType::Datetime) {
        if !mapping.input_formats.is_empty() {
            return reject("input_formats", "datetime fields");
        }
        if mapping.fast_precision.is_some() {
            return reject("fast_precision", "datetime fields");
        }
    }
    if mapping.expand_dots.is_some() && leaf != Some(LeafFieldType::Json) {
        return reject("expand_dots", "json fields");
    }
    if leaf != Some(LeafFieldType::Bytes) && mapping.input_format.is_some() {
        return reject("input_format", "bytes fields");
    }
    if let Some(format) = &mapping.output_format {
        let fits = match format {
            OutputFormat::Binary(_) => leaf == Some(LeafFieldType::Bytes),
            OutputFormat::DateTime(_) => leaf == Some(LeafFieldType::Datetime),
        };
        if !fits {
            return Err(ConfigError::invalid(
                format!("{path}.output_format"),
                format!(
                    "output_format `{format}` does not apply to field `{}` of type `{type_name}` (base64 and hex are for bytes fields, date formats for datetime fields)",
                    mapping.name
                ),
            ));
        }
    }
    if mapping.field_type == FieldType::Object && mapping.fast {
        return reject("fast", "leaf fields; set it on the object's sub-fields");
    }
    if leaf.is_some() && !mapping.indexed && !mapping.stored && !mapping.fast {
        return Err(ConfigError::invalid(
            path,
            format!("field `{}` is neither indexed, stored nor fast: it would be dropped, remove it or enable one", mapping.name),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
