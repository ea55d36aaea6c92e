use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use quarry_config::IndexConfig;
use serde::{Deserialize, Serialize};

use super::SourceCheckpoint;
use crate::time_range::TimeRange;
use crate::{IndexUid, SplitId};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexMetadata {
    pub index_uid: IndexUid,
    pub index_config: IndexConfig,
    /// Per source id.
    #[serde(default)]
    pub checkpoints: BTreeMap<String, SourceCheckpoint>,
    /// Seconds since the epoch.
    pub create_timestamp: i64,
}

impl IndexMetadata {
    pub fn index_id(&self) -> &str {
        self.index_uid.index_id()
    }

    pub fn index_uri(&self) -> &str {
        self.index_config.index_uri.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SplitMaturity {
    /// Will not be merged again.
    Mature,
    /// May be merged until this many seconds after creation.
    Immature { maturation_period_secs: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SplitMetadata {
    pub split_id: SplitId,
    pub index_uid: IndexUid,
    pub source_id: String,
    pub partition_id: u64,
    pub num_docs: u64,
    pub uncompressed_docs_size_bytes: u64,
    pub file_size_bytes: u64,
    pub time_range: Option<TimeRange>,
    pub create_timestamp: i64,
    pub maturity: SplitMaturity,
    /// `field:value` for each tag field value present in the split; `field!` when a field
    /// had too many values to list (the split then matches any value of it).
    pub tags: BTreeSet<String>,
    #[schema(value_type = ByteRange)]
    pub footer_offsets: Range<u64>,
    pub num_merge_ops: u32,
    pub delete_opstamp: u64,
    /// Hash of the split's tantivy schema. tantivy merges only segments of one schema, so
    /// splits merge only with splits of the same fingerprint; a new field in a new version
    /// then leaves older splits to merge among themselves. 0: written before it was kept.
    #[serde(default)]
    pub schema_fingerprint: u64,
}

/// The legal lifecycle: `Staged` → `Published` → `MarkedForDeletion` → forgotten;
/// `Staged` may also be marked for deletion directly (abandoned uploads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SplitState {
    Staged,
    Published,
    MarkedForDeletion,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Split {
    pub split_metadata: SplitMetadata,
    pub split_state: SplitState,
    /// Seconds since the epoch of the last state change.
    pub update_timestamp: i64,
    pub publish_timestamp: Option<i64>,
}

/// What a delete task removes: the documents of the index matching `query` (the query
/// language of the search API) within `[start_timestamp, end_timestamp)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeleteQuery {
    pub index_uid: IndexUid,
    pub query: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_timestamp: Option<i64>,
}

/// A delete query with its place in the index's order of deletes. A split whose
/// `delete_opstamp` is below a task's opstamp may still hold documents the task removes;
/// splits published after the task start at its opstamp, so later documents are untouched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeleteTask {
    pub opstamp: u64,
    /// Seconds since the epoch.
    pub create_timestamp: i64,
    pub delete_query: DeleteQuery,
}

/// How serde writes a `Range<u64>`: `start` inclusive, `end` exclusive.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ByteRange {
    start: u64,
    end: u64,
}
