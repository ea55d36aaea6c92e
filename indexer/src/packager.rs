use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use quarry_common::doc_mapper::MAX_TAG_VALUES_PER_FIELD;
use quarry_common::metastore::{SplitMaturity, SplitMetadata};
use quarry_common::split::{write_split_file, VolumeSpec};
use quarry_common::time_range::TimeRange;
use quarry_common::{IndexUid, SplitId};

use crate::models::{IndexingError, PackagedSplit, INGEST_SOURCE_ID};

/// What the pipeline gathered about a split while indexing it.
#[derive(Debug)]
pub(crate) struct SplitAttributes {
    pub split_id: SplitId,
    pub index_uid: IndexUid,
    pub num_docs: u64,
    pub uncompressed_docs_size_bytes: u64,
    pub time_range: Option<TimeRange>,
    pub tags: BTreeMap<String, BTreeSet<String>>,
    /// A split at the doc target will not be merged; smaller ones may be.
    pub maturity: SplitMaturity,
    /// What the split's per-minute counts cover.
    pub volume: VolumeSpec,
}

/// Files of the index directory become one split file beside it. Blocking.
pub(crate) fn package(
    index_dir: &Path,
    attributes: SplitAttributes,
) -> Result<PackagedSplit, IndexingError> {
    let local_path = index_dir.with_extension("split");
    let written = write_split_file(index_dir, &local_path, &attributes.volume)?;
    let mut tags = BTreeSet::new();
    for (field, values) in attributes.tags {
        if values.len() > MAX_TAG_VALUES_PER_FIELD {
            tags.insert(format!("{field}!"));
        } else {
            tags.extend(values);
        }
    }
    let metadata = SplitMetadata {
        split_id: attributes.split_id,
        index_uid: attributes.index_uid,
        source_id: INGEST_SOURCE_ID.to_string(),
        partition_id: 0,
        num_docs: attributes.num_docs,
        uncompressed_docs_size_bytes: attributes.uncompressed_docs_size_bytes,
        file_size_bytes: written.file_size_bytes,
        time_range: attributes.time_range,
        create_timestamp: now_secs(),
        maturity: attributes.maturity,
        tags,
        footer_offsets: written.footer_offsets,
        num_merge_ops: 0,
        delete_opstamp: 0,
        schema_fingerprint: written.schema_fingerprint,
    };
    Ok(PackagedSplit {
        checkpoint_delta: None,
        metadata,
        local_path,
    })
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}
