//! Runs one merge: downloads the input splits, merges their segments into one, packages
//! and uploads the result, then publishes it in place of the inputs in one metastore
//! update that fails if any input is no longer published.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quarry_common::doc_mapper::MAX_TAG_VALUES_PER_FIELD;
use quarry_common::metastore::{IndexMetadata, Metastore, MetastoreError, SplitMetadata};
use quarry_common::split::{
    download_split_files, source_store, write_split_file, SplitError, VolumeSpec,
};
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
    #[error("delete query: {0}")]
    DeleteQuery(String),
    #[error("merge invariant broken: {0}")]
    Invariant(String),
}

/// What a finished merge did, for logs and metrics.
#[derive(Debug)]
pub struct MergeOutcome {
    pub merged: SplitMetadata,
    pub num_inputs: usize,
    pub input_bytes: u64,
}

/// Documents to leave out of a rewrite, and the delete opstamp the result is at.
pub struct Deletes {
    pub query: Box<dyn tantivy::query::Query>,
    pub opstamp: u64,
}

/// What rewriting splits without deleted documents came to.
#[derive(Debug)]
pub enum RewriteOutcome {
    /// A new split replaced the inputs.
    Replaced(Box<MergeOutcome>),
    /// No input held a deleted document: nothing was written.
    NothingDeleted,
    /// Every document was deleted: nothing was written; the inputs should go.
    AllDeleted,
}

/// The merged index's document count, or why no split was written.
enum Merged {
    Split {
        num_docs: u64,
        written: quarry_common::split::WrittenSplit,
    },
    NothingDeleted,
    AllDeleted,
}

pub struct MergeExecutor {
    pub metastore: Arc<dyn Metastore>,
    pub resolver: StorageResolver,
    /// Scratch space; each merge works in its own folder, removed when it ends.
    pub scratch_dir: PathBuf,
    /// Crash tests widen the window between upload and publish with this pause so that a
    /// kill lands inside it (`QUARRY_FAULT_INJECTION_DELAY_MS`); unset in production.
    pub fault_injection_delay: Option<std::time::Duration>,
}

impl MergeExecutor {
    pub async fn execute(
        &self,
        index_metadata: &IndexMetadata,
        operation: &MergeOperation,
    ) -> Result<MergeOutcome, MergeError> {
        match self
            .rewrite(index_metadata, &operation.splits, None)
            .await?
        {
            RewriteOutcome::Replaced(outcome) => Ok(*outcome),
            // Without deletes every document is kept, so a split is always written.
            RewriteOutcome::NothingDeleted | RewriteOutcome::AllDeleted => Err(
                MergeError::Invariant("a merge without deletes wrote no split".to_string()),
            ),
        }
    }

    /// Rewrites `inputs` into one split, leaving out what `deletes` matches, and publishes
    /// it in their place.
    pub async fn rewrite(
        &self,
        index_metadata: &IndexMetadata,
        inputs: &[quarry_common::metastore::Split],
        deletes: Option<Deletes>,
    ) -> Result<RewriteOutcome, MergeError> {
        let storage = self
            .resolver
            .resolve(index_metadata.index_uri())
            .map_err(|error| MergeError::Storage(error.to_string()))?;
        let merged_id = SplitId::generate();
        let work_dir = self.scratch_dir.join(format!("merge-{merged_id}"));
        let outcome = self
            .merge_in(
                &work_dir,
                &*storage,
                index_metadata,
                inputs,
                deletes,
                merged_id,
            )
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
        splits: &[quarry_common::metastore::Split],
        deletes: Option<Deletes>,
        merged_id: SplitId,
    ) -> Result<RewriteOutcome, MergeError> {
        let mut input_dirs = Vec::new();
        for (position, split) in splits.iter().enumerate() {
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
        let delete_opstamp = deletes.as_ref().map(|deletes| deletes.opstamp);
        let volume = VolumeSpec::of(&index_metadata.index_config);
        let merged = {
            let output_dir = output_dir.clone();
            let split_path = split_path.clone();
            tokio::task::spawn_blocking(move || {
                merge_and_package(
                    &input_dirs,
                    &output_dir,
                    &split_path,
                    deletes.as_ref().map(|deletes| deletes.query.as_ref()),
                    &volume,
                )
            })
            .await
            .map_err(|error| MergeError::Panicked(error.to_string()))??
        };
        let (num_docs, written) = match merged {
            Merged::Split { num_docs, written } => (num_docs, written),
            Merged::NothingDeleted => return Ok(RewriteOutcome::NothingDeleted),
            Merged::AllDeleted => return Ok(RewriteOutcome::AllDeleted),
        };
        let inputs: Vec<&SplitMetadata> =
            splits.iter().map(|split| &split.split_metadata).collect();
        let input_bytes = inputs.iter().map(|input| input.file_size_bytes).sum();
        let mut metadata = merged_metadata(
            merged_id,
            &inputs,
            num_docs,
            written,
            &index_metadata.index_config.indexing_settings,
        );
        if let Some(opstamp) = delete_opstamp {
            metadata.delete_opstamp = opstamp;
            // A rewrite changes no split's place in the merge levels.
            metadata.num_merge_ops -= 1;
        }
        let replaced: Vec<SplitId> = inputs.iter().map(|input| input.split_id.clone()).collect();
        self.metastore
            .stage_splits(&metadata.index_uid, vec![metadata.clone()])
            .await?;
        let file_name = metadata.split_id.file_name();
        let published = async {
            info!(split_id = %metadata.split_id, "uploading merged split");
            storage
                .put_file(&file_name, &split_path)
                .await
                .map_err(|error| MergeError::Storage(error.to_string()))?;
            if let Some(delay) = self.fault_injection_delay {
                tokio::time::sleep(delay).await;
            }
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
        Ok(RewriteOutcome::Replaced(Box::new(MergeOutcome {
            merged: metadata,
            num_inputs: replaced.len(),
            input_bytes,
        })))
    }
}

/// Blocking: merges the segments of the extracted splits into one, leaving out the
/// documents `deletes` matches, and writes the split file.
fn merge_and_package(
    input_dirs: &[PathBuf],
    output_dir: &Path,
    split_path: &Path,
    deletes: Option<&dyn tantivy::query::Query>,
    volume: &VolumeSpec,
) -> Result<Merged, MergeError> {
    let mut segments = Vec::new();
    let mut filters = Vec::new();
    let mut settings = None;
    let (mut num_docs_in, mut num_deleted) = (0u64, 0u64);
    for dir in input_dirs {
        let mut index = Index::open_in_dir(dir)?;
        source_store::register_on_opened(&mut index)?;
        settings.get_or_insert_with(|| index.settings().clone());
        let index_segments = index.searchable_segments()?;
        match deletes {
            Some(query) => {
                let alive = alive_after_deletes(&index, query)?;
                for segment in &index_segments {
                    let (max_doc, alive) = alive
                        .get(&segment.id())
                        .map(|(max_doc, alive)| (*max_doc, alive.clone()))
                        .unwrap_or((segment.meta().max_doc(), None));
                    num_docs_in += u64::from(max_doc);
                    if let Some(alive) = &alive {
                        num_deleted += u64::from(max_doc) - alive.num_alive_docs() as u64;
                    }
                    filters.push(alive);
                }
            }
            None => filters.extend(index_segments.iter().map(|_| None)),
        }
        segments.extend(index_segments);
    }
    if deletes.is_some() {
        if num_deleted == 0 {
            return Ok(Merged::NothingDeleted);
        }
        if num_deleted == num_docs_in {
            return Ok(Merged::AllDeleted);
        }
    }
    let settings = settings.unwrap_or_default();
    std::fs::create_dir_all(output_dir)?;
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
    let written = write_split_file(output_dir, split_path, volume)?;
    Ok(Merged::Split { num_docs, written })
}

type SegmentAlive = (u32, Option<tantivy::fastfield::AliveBitSet>);

/// Per segment: its doc count, and the documents left once `query`'s matches are gone
/// (`None` when nothing matched there).
fn alive_after_deletes(
    index: &Index,
    query: &dyn tantivy::query::Query,
) -> Result<std::collections::HashMap<tantivy::index::SegmentId, SegmentAlive>, MergeError> {
    let reader: tantivy::IndexReader = index
        .reader_builder()
        .reload_policy(tantivy::ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let matched = searcher.search(query, &tantivy::collector::DocSetCollector)?;
    let mut alive = std::collections::HashMap::new();
    for (segment_ord, segment_reader) in searcher.segment_readers().iter().enumerate() {
        let max_doc = segment_reader.max_doc();
        let mut bitset = tantivy::BitSet::with_max_value_and_full(max_doc);
        let mut any_deleted = false;
        for address in matched
            .iter()
            .filter(|address| address.segment_ord as usize == segment_ord)
        {
            bitset.remove(address.doc_id);
            any_deleted = true;
        }
        let filter = if any_deleted {
            let mut bytes = Vec::new();
            tantivy::fastfield::write_alive_bitset(&bitset, &mut bytes)?;
            Some(tantivy::fastfield::AliveBitSet::open(
                tantivy::directory::OwnedBytes::new(bytes),
            ))
        } else {
            None
        };
        alive.insert(segment_reader.segment_id(), (max_doc, filter));
    }
    Ok(alive)
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
        schema_fingerprint: written.schema_fingerprint,
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
    use quarry_common::metastore::{FileBackedMetastore, ListSplitsQuery, Split, SplitState};

    /// Indexes `docs` into a one-segment split, uploads it and publishes it.
    async fn published_split(
        metastore: &dyn Metastore,
        storage: &dyn Storage,
        index_metadata: &IndexMetadata,
        docs: &[&str],
    ) -> Split {
        let doc_mapper = quarry_common::doc_mapper::DocMapper::new(&index_metadata.index_config);
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create_in_dir(dir.path(), doc_mapper.schema().clone()).unwrap();
        let mut writer: tantivy::IndexWriter =
            index.writer_with_num_threads(1, 15_000_000).unwrap();
        for doc in docs {
            writer
                .add_document(doc_mapper.doc_from_json_bytes(doc.as_bytes()).unwrap().doc)
                .unwrap();
        }
        writer.commit().unwrap();
        drop(writer);
        let split_path = dir.path().with_extension("split");
        let written = write_split_file(dir.path(), &split_path, &VolumeSpec::default()).unwrap();
        let metadata = SplitMetadata {
            index_uid: index_metadata.index_uid.clone(),
            num_docs: docs.len() as u64,
            file_size_bytes: written.file_size_bytes,
            footer_offsets: written.footer_offsets,
            maturity: quarry_common::metastore::SplitMaturity::Immature {
                maturation_period_secs: 3600,
            },
            ..test_metadata()
        };
        storage
            .put_file(&metadata.split_id.file_name(), &split_path)
            .await
            .unwrap();
        metastore
            .stage_splits(&metadata.index_uid, vec![metadata.clone()])
            .await
            .unwrap();
        metastore
            .publish_splits(
                &metadata.index_uid,
                std::slice::from_ref(&metadata.split_id),
                &[],
                None,
            )
            .await
            .unwrap();
        let splits = metastore
            .list_splits(&metadata.index_uid, &ListSplitsQuery::published())
            .await
            .unwrap();
        splits
            .into_iter()
            .find(|split| split.split_metadata.split_id == metadata.split_id)
            .unwrap()
    }

    #[tokio::test]
    async fn two_merges_of_the_same_split_one_wins_and_the_other_leaves_nothing() {
        let resolver = StorageResolver::default();
        let root = "ram:///merge-race";
        let metastore: Arc<dyn Metastore> = Arc::new(FileBackedMetastore::new(
            resolver.resolve(root).unwrap(),
            resolver.clone(),
        ));
        let mut config = quarry_config::IndexConfig::parse(
            b"index_id: race\ndoc_mapping:\n  field_mappings:\n    - {name: n, type: u64, fast: true}",
            quarry_config::ConfigFormat::Yaml,
        )
        .unwrap();
        config.index_uri = Some(format!("{root}/race"));
        let index_metadata = metastore.create_index(config).await.unwrap();
        let storage = resolver.resolve(index_metadata.index_uri()).unwrap();
        let mut splits = Vec::new();
        for n in 0..3 {
            let doc = format!("{{\"n\": {n}}}");
            splits.push(
                published_split(&*metastore, &*storage, &index_metadata, &[doc.as_str()]).await,
            );
        }
        let scratch = tempfile::tempdir().unwrap();
        let executor = MergeExecutor {
            metastore: metastore.clone(),
            resolver: resolver.clone(),
            scratch_dir: scratch.path().to_path_buf(),
            fault_injection_delay: None,
        };
        // Both take split 1.
        let left = MergeOperation {
            splits: splits[..2].to_vec(),
        };
        let right = MergeOperation {
            splits: splits[1..].to_vec(),
        };
        let (left, right) = tokio::join!(
            executor.execute(&index_metadata, &left),
            executor.execute(&index_metadata, &right)
        );
        let (winner, loser) = match (left, right) {
            (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner, loser),
            (left, right) => panic!("exactly one merge must win: {left:?} / {right:?}"),
        };
        assert!(
            matches!(
                &loser,
                MergeError::Metastore(MetastoreError::SplitsNotInExpectedState { .. })
            ),
            "{loser}"
        );
        let all = metastore
            .list_splits(&index_metadata.index_uid, &ListSplitsQuery::default())
            .await
            .unwrap();
        // The winner's output is published, its two inputs marked, the third input still
        // published, and nothing of the loser remains: no staged record, no file.
        let state_of = |id: &SplitId| {
            all.iter()
                .find(|split| &split.split_metadata.split_id == id)
                .map(|split| split.split_state)
        };
        assert_eq!(
            state_of(&winner.merged.split_id),
            Some(SplitState::Published)
        );
        assert_eq!(all.len(), 4, "{all:?}");
        assert_eq!(
            all.iter()
                .filter(|split| split.split_state == SplitState::MarkedForDeletion)
                .count(),
            2
        );
        assert_eq!(
            all.iter()
                .filter(|split| split.split_state == SplitState::Published)
                .count(),
            2
        );
        let files = storage.list("").await.unwrap();
        let split_files: Vec<&String> =
            files.iter().filter(|key| key.ends_with(".split")).collect();
        assert_eq!(
            split_files.len(),
            4,
            "the loser's upload was deleted: {split_files:?}"
        );
        assert!(
            std::fs::read_dir(scratch.path()).unwrap().next().is_none(),
            "scratch cleaned"
        );
    }

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
            schema_fingerprint: 0,
        }
    }
}
