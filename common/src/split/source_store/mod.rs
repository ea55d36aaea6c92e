//! The source store: every document's `_source`, exactly as it was sent, in a segment
//! file of our own (`<segment>.source`) instead of tantivy's doc store.
//!
//! tantivy compresses stored documents row by row. Logs compress better by key: the
//! timestamps of a block side by side, the trace ids side by side, and so on (`block`).
//! Sources are also the only stored copy of a document's fields, so tantivy's doc store
//! keeps just what the source cannot give back (a client's `_id`).
//!
//! The store is a tantivy segment plugin: tantivy hands it each document as the segment
//! is written, and asks it to merge when segments merge, so it follows the segment
//! through indexing, merges and delete tasks without any bookkeeping of ours.
//!
//! ```text
//! file  := block* index footer
//! block := zstd(block::encode_block(docs))
//! index := (u32 first_doc, u64 block_end)^num_blocks
//! footer := u64 index_offset, u32 num_blocks, u32 num_docs, u32 version, b"QSRC"
//! ```

mod block;
mod codecs;
mod messages;
#[cfg(test)]
mod property_tests;
mod varint;

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quarry_config::SOURCE_FIELD_NAME;
use tantivy::directory::{FileSlice, TerminatingWrite, WritePtr};
use tantivy::index::{SegmentComponent, SegmentReader};
use tantivy::indexer::doc_id_mapping::MappingType;
use tantivy::schema::document::ReferenceValueLeaf;
use tantivy::schema::document::{ErasedDocument, ErasedValue};
use tantivy::schema::{Field, Schema};
use tantivy::store::Compressor;
use tantivy::{
    DocId, HasLen, Index, PluginMergeContext, PluginWriter, PluginWriterContext, Segment,
    SegmentPlugin, TantivyError,
};

use block::DecodedBlock;

/// The extension of the source store's file in a segment.
pub const SOURCE_EXTENSION: &str = "source";
const MAGIC: &[u8; 4] = b"QSRC";
/// Version 2 added the dictionary and message codecs; version 1 files read as they are.
const VERSION: u32 = 2;
const FOOTER_LEN: usize = 8 + 4 + 4 + 4 + 4;
const INDEX_ENTRY_LEN: usize = 4 + 8;
/// Bytes of decoded blocks kept for all readers of the process, as tantivy's doc store
/// keeps 100 blocks per segment (`searcher.source_block_cache_bytes`).
static BLOCK_CACHE_CAPACITY: AtomicUsize = AtomicUsize::new(128 << 20);

/// Bounds the decoded blocks all readers of the process keep.
pub fn set_block_cache_capacity(bytes: usize) {
    BLOCK_CACHE_CAPACITY.store(bytes, Ordering::Relaxed);
}

/// A block by the id of its reader and its ordinal.
type BlockKey = (u64, usize);

/// Decoded blocks, with the order of their last use: a map each way, so that a cache of
/// gigabytes (thousands of blocks) costs a lookup, not a scan, per fetch.
struct BlockCache {
    /// Per block: when it was last used, and its decoded documents.
    blocks: BTreeMap<BlockKey, (u64, Arc<DecodedBlock>)>,
    /// Blocks by last use, least recent first.
    by_use: BTreeMap<u64, BlockKey>,
    next_use: u64,
    bytes: usize,
}

static BLOCK_CACHE: Mutex<BlockCache> = Mutex::new(BlockCache::new());
static NEXT_READER_ID: AtomicU64 = AtomicU64::new(0);
/// Fetches that found their block decoded in the cache, for `/metrics`.
pub static BLOCK_CACHE_HITS: AtomicU64 = AtomicU64::new(0);
/// Blocks read, decompressed and decoded for a fetch.
pub static BLOCK_CACHE_MISSES: AtomicU64 = AtomicU64::new(0);
/// Bytes the cache holds.
pub static BLOCK_CACHE_HELD_BYTES: AtomicU64 = AtomicU64::new(0);

impl BlockCache {
    const fn new() -> BlockCache {
        BlockCache {
            blocks: BTreeMap::new(),
            by_use: BTreeMap::new(),
            next_use: 0,
            bytes: 0,
        }
    }

    fn get(&mut self, key: BlockKey) -> Option<Arc<DecodedBlock>> {
        let (last_use, block) = self.blocks.get_mut(&key)?;
        self.by_use.remove(last_use);
        *last_use = self.next_use;
        self.by_use.insert(self.next_use, key);
        self.next_use += 1;
        Some(block.clone())
    }

    /// Keeps `block`, then forgets the least recently used blocks past `capacity` bytes.
    fn insert(&mut self, key: BlockKey, block: Arc<DecodedBlock>, capacity: usize) {
        self.bytes += block.heap_bytes();
        // Two fetches can decode the same block at once: the second replaces the first.
        if let Some((last_use, replaced)) = self.blocks.insert(key, (self.next_use, block)) {
            self.by_use.remove(&last_use);
            self.bytes -= replaced.heap_bytes();
        }
        self.by_use.insert(self.next_use, key);
        self.next_use += 1;
        while self.bytes > capacity {
            let Some((_, evicted)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((_, block)) = self.blocks.remove(&evicted) {
                self.bytes -= block.heap_bytes();
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceStoreError {
    #[error("source store is corrupt: {0}")]
    Corrupt(String),
    #[error("source store i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<SourceStoreError> for TantivyError {
    fn from(error: SourceStoreError) -> Self {
        TantivyError::InternalError(error.to_string())
    }
}

fn component() -> SegmentComponent {
    SegmentComponent::Custom(SOURCE_EXTENSION.to_string())
}

/// Whether indexes of `schema` keep their sources in the source store.
pub fn has_source_field(schema: &Schema) -> bool {
    schema.get_field(SOURCE_FIELD_NAME).is_ok()
}

/// Re-attaches the plugin to an index opened from disk, when it was created with it:
/// tantivy refuses to merge an index whose plugins are missing.
pub fn register_on_opened(index: &mut Index) -> tantivy::Result<()> {
    let persisted = index.load_metas()?.persisted_custom_extensions;
    if persisted
        .iter()
        .any(|extension| extension == SOURCE_EXTENSION)
    {
        index.register_plugin(Arc::new(SourceStorePlugin));
    }
    Ok(())
}

/// Writes blocks as they fill, then the index and footer.
pub struct SourceStoreWriter<W: Write> {
    out: W,
    written: u64,
    /// The block being filled: its documents back to back, and where each ends.
    pending: Vec<u8>,
    pending_ends: Vec<usize>,
    block_bytes: usize,
    level: i32,
    index: Vec<(u32, u64)>,
    num_docs: u32,
}

impl<W: Write> SourceStoreWriter<W> {
    /// A block closes once its documents reach `block_bytes`; zstd at `level`.
    pub fn new(out: W, block_bytes: usize, level: i32) -> Self {
        SourceStoreWriter {
            out,
            written: 0,
            pending: Vec::new(),
            pending_ends: Vec::new(),
            block_bytes: block_bytes.max(1),
            level,
            index: Vec::new(),
            num_docs: 0,
        }
    }

    /// The next document's source; empty for a document without one.
    pub fn add(&mut self, source: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(source);
        self.pending_ends.push(self.pending.len());
        if self.pending.len() >= self.block_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> std::io::Result<()> {
        if self.pending_ends.is_empty() {
            return Ok(());
        }
        let mut start = 0;
        let docs: Vec<&[u8]> = self
            .pending_ends
            .iter()
            .map(|end| {
                let doc = &self.pending[start..*end];
                start = *end;
                doc
            })
            .collect();
        let encoded = block::encode_block(&docs);
        let compressed = zstd::bulk::compress(&encoded, self.level)?;
        self.out.write_all(&compressed)?;
        self.index
            .push((self.num_docs, self.written + compressed.len() as u64));
        self.written += compressed.len() as u64;
        self.num_docs += self.pending_ends.len() as u32;
        self.pending.clear();
        self.pending_ends.clear();
        Ok(())
    }

    /// Writes what is pending, the index and the footer; gives the output back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_block()?;
        let index_offset = self.written;
        let mut tail = Vec::with_capacity(self.index.len() * INDEX_ENTRY_LEN + FOOTER_LEN);
        for (first_doc, end) in &self.index {
            tail.extend_from_slice(&first_doc.to_le_bytes());
            tail.extend_from_slice(&end.to_le_bytes());
        }
        tail.extend_from_slice(&index_offset.to_le_bytes());
        tail.extend_from_slice(&(self.index.len() as u32).to_le_bytes());
        tail.extend_from_slice(&self.num_docs.to_le_bytes());
        tail.extend_from_slice(&VERSION.to_le_bytes());
        tail.extend_from_slice(MAGIC);
        self.out.write_all(&tail)?;
        Ok(self.out)
    }
}

#[derive(Clone, Copy, Debug)]
struct BlockMeta {
    first_doc: DocId,
    start: u64,
    end: u64,
}

/// Reads sources of one segment.
pub struct SourceStoreReader {
    file: FileSlice,
    blocks: Vec<BlockMeta>,
    num_docs: u32,
    /// This reader's key in the process's block cache.
    cache_id: u64,
}

fn corrupt(what: impl Into<String>) -> SourceStoreError {
    SourceStoreError::Corrupt(what.into())
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(array)
}

impl SourceStoreReader {
    /// Opens the source store of a segment; `None` when the segment has none (segments
    /// written before it, or of indexes without a stored source). Blocking: reads the
    /// footer and index, which splits keep in their hotcache.
    pub fn open_segment(segment: &SegmentReader) -> Result<Option<Self>, SourceStoreError> {
        match segment.open_read(component()) {
            Ok(file) => Self::open(file).map(Some),
            Err(tantivy::directory::error::OpenReadError::FileDoesNotExist(_)) => Ok(None),
            Err(error) => Err(SourceStoreError::Io(std::io::Error::other(error))),
        }
    }

    pub fn open(file: FileSlice) -> Result<Self, SourceStoreError> {
        let len = file.len();
        if len < FOOTER_LEN {
            return Err(corrupt("source store shorter than its footer"));
        }
        let footer = file.read_bytes_slice(len - FOOTER_LEN..len)?;
        let footer = footer.as_slice();
        if &footer[FOOTER_LEN - 4..] != MAGIC {
            return Err(corrupt("source store without its magic number"));
        }
        let version = le_u32(&footer[16..20]);
        if !(1..=VERSION).contains(&version) {
            return Err(corrupt(format!(
                "source store version {version} (this build reads {VERSION}): upgrade Quarry"
            )));
        }
        let index_offset = le_u64(&footer[0..8]);
        let num_blocks = le_u32(&footer[8..12]) as usize;
        let num_docs = le_u32(&footer[12..16]);
        let index_len = num_blocks
            .checked_mul(INDEX_ENTRY_LEN)
            .filter(|index_len| {
                usize::try_from(index_offset)
                    .ok()
                    .and_then(|offset| offset.checked_add(index_len + FOOTER_LEN))
                    == Some(len)
            })
            .ok_or_else(|| corrupt("source store index does not fit the file"))?;
        let index_start = index_offset as usize;
        let index = file.read_bytes_slice(index_start..index_start + index_len)?;
        let mut blocks = Vec::with_capacity(num_blocks);
        let mut start = 0u64;
        for entry in index.as_slice().chunks_exact(INDEX_ENTRY_LEN) {
            let (first_doc, end) = (le_u32(&entry[0..4]), le_u64(&entry[4..12]));
            let previous_first = blocks.last().map(|block: &BlockMeta| block.first_doc);
            if end < start
                || end > index_offset
                || previous_first.is_some_and(|first| first >= first_doc)
            {
                return Err(corrupt("source store index out of order"));
            }
            blocks.push(BlockMeta {
                first_doc,
                start,
                end,
            });
            start = end;
        }
        if blocks.first().is_some_and(|block| block.first_doc != 0)
            || blocks
                .last()
                .is_some_and(|block| block.first_doc >= num_docs)
        {
            return Err(corrupt("source store index out of range"));
        }
        Ok(SourceStoreReader {
            file,
            blocks,
            num_docs,
            cache_id: NEXT_READER_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub fn num_docs(&self) -> u32 {
        self.num_docs
    }

    fn block_of(&self, doc: DocId) -> Result<usize, SourceStoreError> {
        if doc >= self.num_docs {
            return Err(corrupt(format!(
                "document {doc} is past the source store's {} documents",
                self.num_docs
            )));
        }
        Ok(self.blocks.partition_point(|block| block.first_doc <= doc) - 1)
    }

    /// The byte range of the block holding `doc`, for the warmup to fetch ahead.
    pub fn byte_range_of(&self, doc: DocId) -> Result<Range<usize>, SourceStoreError> {
        let block = &self.blocks[self.block_of(doc)?];
        Ok(block.start as usize..block.end as usize)
    }

    /// Fetches the blocks holding `docs` concurrently, so that `sources` then finds them in
    /// the split's byte-range cache.
    pub async fn warm(&self, docs: &[DocId]) -> Result<(), SourceStoreError> {
        let mut ranges: Vec<Range<usize>> = docs
            .iter()
            .map(|doc| self.byte_range_of(*doc))
            .collect::<Result<_, _>>()?;
        ranges.sort_by_key(|range| range.start);
        ranges.dedup();
        let reads = ranges
            .into_iter()
            .map(|range| self.file.read_bytes_slice_async(range));
        futures::future::try_join_all(reads).await?;
        Ok(())
    }

    fn decoded(&self, block: usize) -> Result<Arc<DecodedBlock>, SourceStoreError> {
        let key = (self.cache_id, block);
        let cache = || {
            BLOCK_CACHE
                .lock()
                .unwrap_or_else(|error| error.into_inner())
        };
        if let Some(bytes) = cache().get(key) {
            BLOCK_CACHE_HITS.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        BLOCK_CACHE_MISSES.fetch_add(1, Ordering::Relaxed);
        let meta = self.blocks[block];
        let compressed = self
            .file
            .read_bytes_slice(meta.start as usize..meta.end as usize)?;
        let decoded = Arc::new(DecodedBlock::decode(zstd::decode_all(
            compressed.as_slice(),
        )?)?);
        let mut cache = cache();
        cache.insert(
            key,
            decoded.clone(),
            BLOCK_CACHE_CAPACITY.load(Ordering::Relaxed),
        );
        BLOCK_CACHE_HELD_BYTES.store(cache.bytes as u64, Ordering::Relaxed);
        Ok(decoded)
    }

    /// The sources of `docs`, in their order; `None` for a document stored without one.
    /// Blocking: reads the blocks not cached yet.
    pub fn sources(&self, docs: &[DocId]) -> Result<Vec<Option<Vec<u8>>>, SourceStoreError> {
        let mut order: Vec<(usize, DocId)> = docs.iter().copied().enumerate().collect();
        order.sort_by_key(|(_, doc)| *doc);
        let mut out: Vec<Option<Vec<u8>>> = vec![None; docs.len()];
        let mut start = 0;
        while start < order.len() {
            let block = self.block_of(order[start].1)?;
            let first_doc = self.blocks[block].first_doc;
            let end = start
                + order[start..]
                    .iter()
                    .take_while(|(_, doc)| self.block_of(*doc).ok() == Some(block))
                    .count();
            let decoded = self.decoded(block)?;
            let positions: Vec<usize> = order[start..end]
                .iter()
                .map(|(_, doc)| (doc - first_doc) as usize)
                .collect();
            for ((slot, _), source) in order[start..end].iter().zip(decoded.docs(&positions)?) {
                out[*slot] = (!source.is_empty()).then_some(source);
            }
            start = end;
        }
        Ok(out)
    }

    /// Every source of the segment in document order, for merges. Blocking.
    fn for_each_block(
        &self,
        mut each: impl FnMut(DocId, Vec<Vec<u8>>) -> Result<(), SourceStoreError>,
    ) -> Result<(), SourceStoreError> {
        for (ord, meta) in self.blocks.iter().enumerate() {
            let compressed = self
                .file
                .read_bytes_slice(meta.start as usize..meta.end as usize)?;
            let decoded = DecodedBlock::decode(zstd::decode_all(compressed.as_slice())?)?;
            let expected_end = self
                .blocks
                .get(ord + 1)
                .map_or(self.num_docs, |next| next.first_doc);
            if decoded.num_docs() != (expected_end - meta.first_doc) as usize {
                return Err(corrupt(
                    "a block holds another number of documents than the index says",
                ));
            }
            let all: Vec<usize> = (0..decoded.num_docs()).collect();
            each(meta.first_doc, decoded.docs(&all)?)?;
        }
        Ok(())
    }
}

/// The tantivy plugin that writes and merges `<segment>.source`.
pub struct SourceStorePlugin;

fn writer_for(segment: &Segment) -> tantivy::Result<SourceStoreWriter<WritePtr>> {
    let settings = segment.index().settings();
    let level = match settings.docstore_compression {
        Compressor::Zstd(zstd) => zstd.compression_level.unwrap_or(3),
        _ => 3,
    };
    let out = segment.open_write(component())?;
    Ok(SourceStoreWriter::new(
        out,
        settings.docstore_blocksize,
        level,
    ))
}

fn terminate(writer: SourceStoreWriter<WritePtr>) -> tantivy::Result<()> {
    let out = writer.finish()?;
    out.terminate()?;
    Ok(())
}

impl SegmentPlugin for SourceStorePlugin {
    fn extensions(&self) -> &[&str] {
        &[SOURCE_EXTENSION]
    }

    fn create_writer(&self, ctx: &PluginWriterContext) -> tantivy::Result<Box<dyn PluginWriter>> {
        let source_field = ctx.segment.schema().get_field(SOURCE_FIELD_NAME).ok();
        Ok(Box::new(SourcePluginWriter {
            source_field,
            writer: Some(writer_for(ctx.segment)?),
            mem_usage: 0,
        }))
    }

    fn merge(&self, ctx: PluginMergeContext) -> tantivy::Result<()> {
        if ctx.doc_id_mapping.mapping_type() == MappingType::Shuffled {
            return Err(TantivyError::InvalidArgument(
                "the source store cannot follow a merge that reorders documents (index sorting)"
                    .to_string(),
            ));
        }
        let mut writer = writer_for(ctx.target_segment)?;
        for reader in ctx.readers {
            let Some(store) = SourceStoreReader::open_segment(reader)? else {
                return Err(TantivyError::InternalError(format!(
                    "segment {} has no source store to merge",
                    reader.segment_id().uuid_string()
                )));
            };
            let alive = reader.alive_bitset();
            store.for_each_block(|first_doc, sources| {
                for (doc, source) in (first_doc..).zip(sources) {
                    if alive.is_none_or(|alive| alive.is_alive(doc)) {
                        writer.add(&source)?;
                    }
                }
                Ok(())
            })?;
        }
        terminate(writer)
    }
}

struct SourcePluginWriter {
    source_field: Option<Field>,
    writer: Option<SourceStoreWriter<WritePtr>>,
    mem_usage: usize,
}

impl PluginWriter for SourcePluginWriter {
    fn add_document(
        &mut self,
        _doc_id: DocId,
        doc: &dyn ErasedDocument,
        _schema: &Schema,
    ) -> tantivy::Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(TantivyError::InternalError(
                "source store written after it was closed".to_string(),
            ));
        };
        let source = self.source_field.and_then(|source_field| {
            doc.erased_fields().find_map(|(field, value)| match value {
                ErasedValue::Leaf(ReferenceValueLeaf::Bytes(bytes)) if field == source_field => {
                    Some(bytes)
                }
                _ => None,
            })
        });
        writer.add(source.unwrap_or_default())?;
        self.mem_usage = writer.pending.capacity();
        Ok(())
    }

    fn serialize(
        mut self: Box<Self>,
        _segment: &Segment,
        doc_id_map: Option<&tantivy::indexer::DocIdMapping>,
    ) -> tantivy::Result<()> {
        if doc_id_map.is_some() {
            return Err(TantivyError::InvalidArgument(
                "the source store cannot follow index sorting".to_string(),
            ));
        }
        match self.writer.take() {
            Some(writer) => terminate(writer),
            None => Ok(()),
        }
    }

    fn mem_usage(&self) -> usize {
        self.mem_usage
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests;
