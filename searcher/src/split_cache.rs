use std::path::Path;
use std::sync::{Arc, OnceLock};

use quarry_common::split::source_store::SourceStoreReader;
use quarry_common::split::volume::VOLUME_FILE;
use quarry_common::split::{SplitDirectory, SplitError, SplitOpenInfo, VolumeCounts};
use quarry_common::SplitId;
use tantivy::columnar::{ColumnType, ColumnarReader};
use tantivy::index::SegmentComponent;
use tantivy::{Directory, Index, ReloadPolicy, Searcher};
use tracing::warn;

use crate::lru::LruMap;

/// Splits are immutable, so an opened split (its footer, hotcache and tantivy readers)
/// stays valid until evicted: repeated queries skip the storage round trip entirely.
pub(crate) struct SplitCache {
    entries: LruMap<SplitId, Arc<OpenSplit>>,
}

pub(crate) struct OpenSplit {
    directory: SplitDirectory,
    searcher: OnceLock<Searcher>,
    volume: OnceLock<Option<Arc<VolumeCounts>>>,
    /// Per segment of the searcher, its source store (`None` for splits without).
    sources: OnceLock<Vec<Option<Arc<SourceStoreReader>>>>,
    /// The footer, file table and hotcache held in memory: what the cache is bounded by.
    footer_bytes: usize,
}

impl OpenSplit {
    /// The tantivy searcher over the split. Blocking on first use: call from a blocking thread.
    pub(crate) fn searcher(&self) -> tantivy::Result<Searcher> {
        if let Some(searcher) = self.searcher.get() {
            return Ok(searcher.clone());
        }
        let index = Index::open(self.directory.clone())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        Ok(self.searcher.get_or_init(|| searcher).clone())
    }
}

impl OpenSplit {
    /// The source store of each of `searcher`'s segments, opened once (from the hotcache
    /// for splits packaged with it). Blocking.
    pub(crate) fn sources(
        &self,
        searcher: &Searcher,
    ) -> Result<Vec<Option<Arc<SourceStoreReader>>>, String> {
        if let Some(sources) = self.sources.get() {
            return Ok(sources.clone());
        }
        let sources = searcher
            .segment_readers()
            .iter()
            .map(|segment| {
                SourceStoreReader::open_segment(segment)
                    .map(|reader| reader.map(Arc::new))
                    .map_err(|error| error.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.sources.get_or_init(|| sources).clone())
    }

    /// The split's per-minute counts; `None` for splits packaged without them. Read from
    /// the hotcache on first use.
    pub(crate) fn volume(&self) -> Option<Arc<VolumeCounts>> {
        self.volume
            .get_or_init(|| {
                let path = Path::new(VOLUME_FILE);
                if !self.directory.exists(path).unwrap_or(false) {
                    return None;
                }
                let read = self
                    .directory
                    .open_read(path)
                    .map_err(|error| error.to_string())
                    .and_then(|file| file.read_bytes().map_err(|error| error.to_string()))
                    .and_then(|bytes| {
                        VolumeCounts::decode(bytes.as_slice()).map_err(|error| error.to_string())
                    });
                match read {
                    Ok(counts) => Some(Arc::new(counts)),
                    Err(error) => {
                        // The collector answers instead: slower, still right.
                        warn!("split volume counts unreadable: {error}");
                        None
                    }
                }
            })
            .clone()
    }

    /// The name and type of every fast column of every segment. Json fields keep one
    /// column per path and type, so this is what documents put in them. Blocking.
    pub(crate) fn fast_columns(&self) -> tantivy::Result<Vec<(String, ColumnType)>> {
        let index = Index::open(self.directory.clone())?;
        let mut columns = Vec::new();
        for segment in index.searchable_segments()? {
            let file = segment.open_read(SegmentComponent::FastFields)?;
            for (name, handle) in ColumnarReader::open(file)?.list_columns()? {
                columns.push((name, handle.column_type()));
            }
        }
        Ok(columns)
    }
}

impl SplitCache {
    pub(crate) fn new(capacity_bytes: usize) -> SplitCache {
        SplitCache {
            entries: LruMap::with_weigher(capacity_bytes, |open: &Arc<OpenSplit>| {
                open.footer_bytes
            }),
        }
    }

    pub(crate) async fn get_or_open(
        &self,
        split_id: &SplitId,
        info: SplitOpenInfo,
    ) -> Result<Arc<OpenSplit>, SplitError> {
        if let Some(open) = self.entries.get(split_id) {
            return Ok(open);
        }
        let footer_bytes = (info.footer_offsets.end - info.footer_offsets.start) as usize;
        let directory = SplitDirectory::open(info).await?;
        let open = Arc::new(OpenSplit {
            directory,
            searcher: OnceLock::new(),
            volume: OnceLock::new(),
            sources: OnceLock::new(),
            footer_bytes,
        });
        self.entries.insert(split_id.clone(), open.clone());
        Ok(open)
    }

    pub(crate) fn footer_bytes(&self) -> usize {
        self.entries.weight()
    }

    pub(crate) fn evict(&self, split_id: &SplitId) {
        self.entries.remove(split_id);
    }
}
