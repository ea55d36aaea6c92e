use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use tantivy::columnar::ColumnarReader;
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentComponent;
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher};

use super::footer::SplitFooter;
use super::hotcache::RecordingDirectory;
use super::volume::{VolumeCounts, VolumeSpec, VOLUME_FILE};
use super::{FileTable, HotCache, SplitError};

/// What the packager learns from writing a split file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenSplit {
    pub file_size_bytes: u64,
    /// `[file table .. end of file]`: the one range a searcher reads to open the split.
    pub footer_offsets: Range<u64>,
    /// `schema_fingerprint` of the packaged index.
    pub schema_fingerprint: u64,
}

/// Hash of a tantivy schema's serialized form (field names, types and options, in order).
pub fn schema_fingerprint(schema: &tantivy::schema::Schema) -> u64 {
    let serialized = serde_json::to_vec(schema).unwrap_or_default();
    crate::stable_hash(&serialized)
}

pub(super) fn tantivy_error(error: impl std::fmt::Display) -> SplitError {
    SplitError::Tantivy(error.to_string())
}

/// A searcher over the committed segments of `index`, which nothing writes any more.
pub(super) fn searcher_of(index: &Index) -> Result<Searcher, SplitError> {
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(tantivy_error)?;
    Ok(reader.searcher())
}

/// Packages the committed tantivy index in `index_dir` (one or more segments) into
/// one split file at `output`, with the per-minute counts `volume` asks for. Blocking:
/// call it from a blocking thread.
pub fn write_split_file(
    index_dir: &Path,
    output: &Path,
    volume: &VolumeSpec,
) -> Result<WrittenSplit, SplitError> {
    let counts = VolumeCounts::compute(index_dir, volume)?.map(|counts| counts.encode());
    if let Some(counts) = &counts {
        let path = index_dir.join(VOLUME_FILE);
        std::fs::write(&path, counts)
            .map_err(|error| SplitError::Io(format!("writing `{}`: {error}", path.display())))?;
    }
    let counts_len = counts.map(|counts| counts.len() as u64);
    let (files, schema_fingerprint) = files_to_package(index_dir, counts_len.is_some())?;
    let hotcache = build_hotcache(index_dir, counts_len)?;

    let io_error =
        |error: std::io::Error| SplitError::Io(format!("writing `{}`: {error}", output.display()));
    let mut writer = BufWriter::with_capacity(1 << 20, File::create(output).map_err(io_error)?);
    let mut file_table = FileTable::default();
    let mut offset = 0u64;
    for file in &files {
        let mut source = File::open(index_dir.join(file))
            .map_err(|error| SplitError::Io(format!("opening `{}`: {error}", file.display())))?;
        let len = std::io::copy(&mut source, &mut writer).map_err(io_error)?;
        file_table.insert(file.clone(), offset..offset + len);
        offset += len;
    }
    let file_table_bytes = file_table.encode();
    let mut checksum = crc32c::crc32c(&file_table_bytes);
    checksum = crc32c::crc32c_append(checksum, &hotcache);
    let footer = SplitFooter {
        file_table_offset: offset,
        file_table_len: file_table_bytes.len() as u64,
        hotcache_len: hotcache.len() as u64,
        crc32c: checksum,
    };
    writer.write_all(&file_table_bytes).map_err(io_error)?;
    writer.write_all(&hotcache).map_err(io_error)?;
    writer.write_all(&footer.encode()).map_err(io_error)?;
    // No fsync: the file is scratch until uploaded, the upload makes it durable, and a
    // crash before that replays the write-ahead log.
    writer
        .into_inner()
        .map_err(|error| io_error(error.into_error()))?;
    let file_size_bytes = offset + footer.metadata_len() + super::FOOTER_LEN as u64;
    Ok(WrittenSplit {
        file_size_bytes,
        footer_offsets: offset..file_size_bytes,
        schema_fingerprint,
    })
}

/// The files of the searchable segments plus `meta.json`; lock files, `.managed.json` and
/// files of deleted segments stay behind. With the schema's fingerprint.
fn files_to_package(
    index_dir: &Path,
    with_counts: bool,
) -> Result<(Vec<PathBuf>, u64), SplitError> {
    let index = Index::open_in_dir(index_dir).map_err(tantivy_error)?;
    let segment_prefixes: Vec<String> = index
        .searchable_segment_metas()
        .map_err(tantivy_error)?
        .iter()
        .map(|segment_meta| segment_meta.id().uuid_string())
        .collect();
    let mut files = BTreeSet::new();
    let entries = std::fs::read_dir(index_dir)
        .map_err(|error| SplitError::Io(format!("listing `{}`: {error}", index_dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|error| SplitError::Io(error.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let belongs_to_segment = segment_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()));
        if belongs_to_segment && !name.ends_with(".temp") {
            files.insert(PathBuf::from(name));
        }
    }
    files.insert(PathBuf::from("meta.json"));
    if with_counts {
        files.insert(PathBuf::from(VOLUME_FILE));
    }
    Ok((
        files.into_iter().collect(),
        schema_fingerprint(&index.schema()),
    ))
}

/// Opens the index the way a searcher will and keeps every byte range that costs.
fn build_hotcache(index_dir: &Path, counts_len: Option<u64>) -> Result<Vec<u8>, SplitError> {
    let mmap = MmapDirectory::open(index_dir).map_err(tantivy_error)?;
    let (recording, reads) = RecordingDirectory::new(Box::new(mmap));
    let index = Index::open(recording).map_err(tantivy_error)?;
    let schema = index.schema();
    let searcher = searcher_of(&index)?;
    for segment_reader in searcher.segment_readers() {
        for (field, entry) in schema.fields() {
            if entry.is_indexed() {
                segment_reader
                    .inverted_index(field)
                    .map_err(tantivy_error)?;
            }
            if entry.has_fieldnorms() {
                segment_reader
                    .get_fieldnorms_reader(field)
                    .map_err(tantivy_error)?;
            }
        }
        // Opening the fast field reader reads the column directory; the columns
        // themselves are fetched (and cached by range) by the queries that need them, so
        // that the hotcache stays small.
        segment_reader.fast_fields();
        segment_reader.get_store_reader(0).map_err(tantivy_error)?;
        // The source store's index, so that a hit's block is the only read of a fetch.
        super::source_store::SourceStoreReader::open_segment(segment_reader)
            .map_err(tantivy_error)?;
    }
    // The names of all columns, with where each lies: a small dictionary that every query
    // reading a column (a sort, an aggregation, a document's log id) would otherwise fetch
    // first, a round trip before the column itself.
    for segment in index.searchable_segments().map_err(tantivy_error)? {
        let file = segment
            .open_read(SegmentComponent::FastFields)
            .map_err(tantivy_error)?;
        ColumnarReader::open(file)
            .and_then(|columnar| columnar.list_columns())
            .map_err(tantivy_error)?;
    }
    // Searchers read the counts with the footer, so a histogram costs no extra GET.
    if let Some(len) = counts_len {
        reads.record(Path::new(VOLUME_FILE), 0..len);
    }
    HotCache::encode(&reads, |path| std::fs::read(index_dir.join(path)))
}
