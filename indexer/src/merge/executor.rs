//! Runs one merge: downloads the input splits, merges their segments into one, packages
//! and uploads the result, then publishes it in place of the inputs in one metastore
//! update that fails if any input is no longer published.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quarry_common::doc_mapper::MAX_TAG_VALUES_PER_FIELD;
use quarry_common::metastore::{IndexMetadata, Metastore, MetastoreError, SplitMetadata};
use quarry_common::split::{download_split_files, write_split_file, SplitError};
use quarry_common::storage::{Storage, StorageResolver};
use quarry_common::time_range::TimeRange;
use quarry_common::SplitId;
use tantivy::directory::MmapDirectory;
use tantivy::Index;
use tracing::{info, warn};

use super::policy::{split_maturity, MergeOperation};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("split: {0}")]
    Split(#[from] SplitError),
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(String),
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
    #[error("merge task panicked: {0}")]
    Panicked(String),
}

/// What a finished merge did, for logs and metrics.
#[derive(Debug)]
pub struct MergeOutcome {
    pub merged: SplitMetadata,
    pub num_inputs: usize,
    pub input_bytes: u64,
}

pub struct MergeExecutor {
    pub metastore: Arc<dyn Metastore>,
    pub resolver: StorageResolver,
    /// Scratch space; each merge works in its own folder, removed when it ends.
    pub scratch_dir: PathBuf,
}

impl MergeExecutor {
    pub async fn execute(
        &self,
        index_metadata: &IndexMetadata,
        operation: &MergeOperation,
    ) -> Result<MergeOutcome, MergeError> {
        let storage = self
            .resolver
            .resolve(index_metadata.index_uri())
            .map_err(|error| MergeError::Storage(error.to_string()))?;
        let merged_id = SplitId::generate();
        let work_dir = self.scratch_dir.join(format!("merge-{merged_id}"));
        let outcome = self
            .merge_in(&work_dir, &*storage, index_metadata, operation, merged_id)
            .await;
        if let Err(error) = tokio::fs::remove_dir_all(&work_dir).await {
            warn!(dir = %work_dir.display(), "cannot remove merge scratch folder: {error}");
        }
        outcome
    }

    async fn merge_in(
        &self,
        work_dir: &Path,
        storage: &dyn Storage,
        index_metadata: &IndexMetadata,
        operation: &MergeOperation,
        merged_id: SplitId,
    ) -> Result<MergeOutcome, MergeError> {
        let mut input_dirs = Vec::new();
        for (position, split) in operation.splits.iter().enumerate() {
            let dir = work_dir.join(format!("input-{position}"));
            tokio::fs::create_dir_all(&dir).await?;
            let metadata = &split.split_metadata;
            download_split_files(
                storage,
                &metadata.split_id.file_name(),
                metadata.footer_offsets.clone(),
                &dir,
            )
            .await?;
            input_dirs.push(dir);
        }
        let output_dir = work_dir.join("merged");
        let split_path = work_dir.join("merged.split");
        let (num_docs, written) = {
            let output_dir = output_dir.clone();
            let split_path = split_path.clone();
            tokio::task::spawn_blocking(move || {
                merge_and_package(&input_dirs, &output_dir, &split_path)
            })
            .await
            .map_err(|error| MergeError::Panicked(error.to_string()))??
        };
        let inputs: Vec<&SplitMetadata> = operation
            .splits
            .iter()
            .map(|split| &split.split_metadata)
            .collect();
        let input_bytes = inputs.iter().map(|input| input.file_size_bytes).sum();
        let metadata = merged_metadata(
            merged_id,
            &inputs,
            num_docs,
            written,
            &index_metadata.index_config.indexing_settings,
        );
        let replaced: Vec<SplitId> = inputs.iter().map(|input| input.split_id.clone()).collect();
        self.metastore
            .stage_splits(&metadata.index_uid, vec![metadata.clone()])
            .await?;
        let file_name = metadata.split_id.file_name();
        let published = async {
            storage
                .put_file(&file_name, &split_path)
                .await
                .map_err(|error| MergeError::Storage(error.to_string()))?;
            self.metastore
                .publish_splits(
                    &metadata.index_uid,
                    std::slice::from_ref(&metadata.split_id),
                    &replaced,
                    None,
                )
                .await?;
            Ok::<(), MergeError>(())
        }
        .await;
        if let Err(error) = published {
            // Another merge or a delete got to an input first: leave nothing behind.
            if let Err(cleanup) = storage.delete(&file_name).await {
                warn!(split_id = %metadata.split_id, "cannot delete the unpublished merge output: {cleanup}");
            }
            if let Err(cleanup) = self
                .metastore
                .delete_splits(
                    &metadata.index_uid,
                    std::slice::from_ref(&metadata.split_id),
                )
                .await
            {
                warn!(split_id = %metadata.split_id, "cannot forget the unpublished merge output: {cleanup}");
            }
            return Err(error);
        }
        info!(
            index_id = index_metadata.index_id(),
            split_id = %metadata.split_id,
            num_inputs = replaced.len(),
            num_docs,
            "merged splits published"
        );
        Ok(MergeOutcome {
            merged: metadata,
            num_inputs: replaced.len(),
            input_bytes,
        })
    }
}

/// Blocking: merges the segments of the extracted splits into one and writes the split file.
fn merge_and_package(
    input_dirs: &[PathBuf],
    output_dir: &Path,
    split_path: &Path,
) -> Result<(u64, quarry_common::split::WrittenSplit), MergeError> {
    let mut segments = Vec::new();
    let mut settings = None;
    for dir in input_dirs {
        let index = Index::open_in_dir(dir)?;
        settings.get_or_insert_with(|| index.settings().clone());
        segments.extend(index.searchable_segments()?);
    }
    let settings = settings.unwrap_or_default();
    std::fs::create_dir_all(output_dir)?;
    let filters = vec![None; segments.len()];
    let merged = tantivy::indexer::merge_filtered_segments(
        &segments,
        settings,
        filters,
        MmapDirectory::open(output_dir)
            .map_err(|error| MergeError::Io(std::io::Error::other(error.to_string())))?,
    )?;
    let num_docs = merged
        .searchable_segment_metas()?
        .iter()
        .map(|meta| meta.num_docs() as u64)
        .sum();
    drop(merged);
    let written = write_split_file(output_dir, split_path)?;
    Ok((num_docs, written))
}

fn merged_metadata(
    split_id: SplitId,
    inputs: &[&SplitMetadata],
    num_docs: u64,
    written: quarry_common::split::WrittenSplit,
    settings: &quarry_config::IndexingSettings,
) -> SplitMetadata {
    let first = inputs[0];
    let mut time_range: Option<TimeRange> = None;
    for input in inputs {
        if let Some(range) = input.time_range {
            match &mut time_range {
                Some(merged) => merged.extend(range),
                None => time_range = Some(range),
            }
        }
    }
    SplitMetadata {
        split_id,
        index_uid: first.index_uid.clone(),
        source_id: first.source_id.clone(),
        partition_id: first.partition_id,
        num_docs,
        uncompressed_docs_size_bytes: inputs
            .iter()
            .map(|input| input.uncompressed_docs_size_bytes)
            .sum(),
        file_size_bytes: written.file_size_bytes,
        time_range,
        create_timestamp: crate::packager::now_secs(),
        maturity: split_maturity(num_docs, settings),
        tags: merged_tags(inputs),
        footer_offsets: written.footer_offsets,
        num_merge_ops: inputs
            .iter()
            .map(|input| input.num_merge_ops)
            .max()
            .unwrap_or(0)
            + 1,
        delete_opstamp: inputs
            .iter()
            .map(|input| input.delete_opstamp)
            .max()
            .unwrap_or(0),
    }
}

/// The union of the inputs' tags; a field over the per-split bound, or already marked as
/// over it (`field!`) in an input, is recorded as `field!` (never pruned on).
fn merged_tags(inputs: &[&SplitMetadata]) -> BTreeSet<String> {
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut overflowed: BTreeSet<String> = BTreeSet::new();
    for input in inputs {
        for tag in &input.tags {
            if let Some(field) = tag.strip_suffix('!') {
                overflowed.insert(field.to_string());
            } else if let Some((field, _)) = tag.split_once(':') {
                values
                    .entry(field.to_string())
                    .or_default()
                    .insert(tag.clone());
            }
        }
    }
    let mut tags = BTreeSet::new();
    for (field, field_values) in values {
        if overflowed.contains(&field) || field_values.len() > MAX_TAG_VALUES_PER_FIELD {
            overflowed.insert(field);
        } else {
            tags.extend(field_values);
        }
    }
    tags.extend(overflowed.into_iter().map(|field| format!("{field}!")));
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_union_and_overflow() {
        let with_tags = |tags: &[&str]| SplitMetadata {
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
            ..test_metadata()
        };
        let left = with_tags(&["service:api", "tenant!"]);
        let right = with_tags(&["service:db", "tenant:7"]);
        let merged = merged_tags(&[&left, &right]);
        assert_eq!(
            merged.into_iter().collect::<Vec<_>>(),
            vec!["service:api", "service:db", "tenant!"]
        );
    }

    fn test_metadata() -> SplitMetadata {
        SplitMetadata {
            split_id: SplitId::generate(),
            index_uid: quarry_common::IndexUid::new("logs"),
            source_id: "ingest".to_string(),
            partition_id: 0,
            num_docs: 1,
            uncompressed_docs_size_bytes: 1,
            file_size_bytes: 1,
            time_range: None,
            create_timestamp: 0,
            maturity: quarry_common::metastore::SplitMaturity::Mature,
            tags: BTreeSet::new(),
            footer_offsets: 0..0,
            num_merge_ops: 0,
            delete_opstamp: 0,
        }
    }
}
