use std::collections::{BTreeMap, HashMap};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tantivy::directory::error::LockError;
use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    DirectoryLock, FileHandle, Lock, OwnedBytes, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::{Directory, HasLen};

use super::file_table::ByteReader;
use super::SplitError;

/// A single hotcache slice is bounded so that a corrupt length cannot make us allocate.
const MAX_HOTCACHE_SLICE_LEN: u32 = 256 * 1024 * 1024;

/// The byte ranges tantivy reads just to open a split (term dictionary indexes, fast field
/// headers, doc store skip index, meta.json…), shipped inside the split so that opening it
/// costs one request instead of dozens.
#[derive(Clone, Debug, Default)]
pub struct HotCache {
    slices: HashMap<PathBuf, Vec<(u64, OwnedBytes)>>,
}

impl HotCache {
    /// The slice of `path` covering `range`, if the hotcache has it.
    pub fn get(&self, path: &Path, range: &Range<u64>) -> Option<OwnedBytes> {
        let slices = self.slices.get(path)?;
        // Slices are sorted and disjoint: the candidate is the last one starting at or before.
        let position = slices.partition_point(|(start, _)| *start <= range.start);
        let (start, bytes) = slices.get(position.checked_sub(1)?)?;
        let end = start + bytes.len() as u64;
        if range.end > end {
            return None;
        }
        let from = (range.start - start) as usize;
        let to = (range.end - start) as usize;
        Some(bytes.slice(from..to))
    }

    pub fn encode(
        recorded: &RecordedReads,
        read_file: impl Fn(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<Vec<u8>, SplitError> {
        let mut out = Vec::new();
        let files = recorded.coalesced();
        out.extend_from_slice(&(files.len() as u32).to_le_bytes());
        for (path, ranges) in files {
            let content = read_file(&path).map_err(|error| {
                SplitError::Io(format!(
                    "reading `{}` for the hotcache: {error}",
                    path.display()
                ))
            })?;
            let name = path.to_string_lossy();
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
            for range in ranges {
                let end = (range.end as usize).min(content.len());
                let start = (range.start as usize).min(end);
                out.extend_from_slice(&(start as u64).to_le_bytes());
                out.extend_from_slice(&((end - start) as u32).to_le_bytes());
                out.extend_from_slice(&content[start..end]);
            }
        }
        Ok(out)
    }

    /// Decodes without copying: slices point into `bytes`.
    pub fn decode(bytes: OwnedBytes) -> Result<HotCache, SplitError> {
        let mut reader = ByteReader::new(bytes.as_slice(), SplitError::CorruptHotCache);
        let num_files = reader.u32()?;
        if num_files > super::MAX_FILES_IN_SPLIT {
            return Err(SplitError::CorruptHotCache(format!(
                "announces {num_files} files, more than a split may hold"
            )));
        }
        let mut slices = HashMap::new();
        for _ in 0..num_files {
            let name = reader.name()?;
            let num_slices = reader.u32()?;
            let mut file_slices: Vec<(u64, OwnedBytes)> = Vec::new();
            for _ in 0..num_slices {
                let start = reader.u64()?;
                let len = reader.u32()?;
                if len > MAX_HOTCACHE_SLICE_LEN {
                    return Err(SplitError::CorruptHotCache(format!(
                        "slice of `{name}` is {len} bytes, over the {MAX_HOTCACHE_SLICE_LEN}-byte bound"
                    )));
                }
                let data_start = reader.position();
                reader.take(len as usize)?;
                if file_slices
                    .last()
                    .is_some_and(|(previous_start, previous)| {
                        previous_start + previous.len() as u64 > start
                    })
                {
                    return Err(SplitError::CorruptHotCache(format!(
                        "slices of `{name}` overlap or are out of order"
                    )));
                }
                file_slices.push((start, bytes.slice(data_start..data_start + len as usize)));
            }
            slices.insert(PathBuf::from(name), file_slices);
        }
        reader.expect_end()?;
        Ok(HotCache { slices })
    }
}

/// Byte ranges read per file while a split was opened, gathered by [`RecordingDirectory`].
#[derive(Clone, Debug, Default)]
pub struct RecordedReads {
    reads: Arc<Mutex<BTreeMap<PathBuf, Vec<Range<u64>>>>>,
}

impl RecordedReads {
    pub(super) fn record(&self, path: &Path, range: Range<u64>) {
        let mut reads = self
            .reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        reads.entry(path.to_path_buf()).or_default().push(range);
    }

    /// Sorted, merged ranges per file. Ranges closer than 64 bytes are joined: one slice is
    /// cheaper than two headers and two lookups.
    pub fn coalesced(&self) -> BTreeMap<PathBuf, Vec<Range<u64>>> {
        let reads = self
            .reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        reads
            .iter()
            .map(|(path, ranges)| {
                let mut ranges = ranges.clone();
                ranges.sort_by_key(|range| range.start);
                let mut merged: Vec<Range<u64>> = Vec::new();
                for range in ranges {
                    match merged.last_mut() {
                        Some(last) if range.start <= last.end + 64 => {
                            last.end = last.end.max(range.end)
                        }
                        _ => merged.push(range),
                    }
                }
                (path.clone(), merged)
            })
            .collect()
    }
}

/// Wraps a directory and records every byte range read through it.
#[derive(Clone, Debug)]
pub struct RecordingDirectory {
    inner: Box<dyn Directory>,
    reads: RecordedReads,
}

impl RecordingDirectory {
    pub fn new(inner: Box<dyn Directory>) -> (RecordingDirectory, RecordedReads) {
        let reads = RecordedReads::default();
        (
            RecordingDirectory {
                inner,
                reads: reads.clone(),
            },
            reads,
        )
    }
}

#[derive(Debug)]
struct RecordingFileHandle {
    path: PathBuf,
    inner: Arc<dyn FileHandle>,
    reads: RecordedReads,
}

impl HasLen for RecordingFileHandle {
    fn len(&self) -> usize {
        self.inner.len()
    }
}

#[async_trait]
impl FileHandle for RecordingFileHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        self.reads
            .record(&self.path, range.start as u64..range.end as u64);
        self.inner.read_bytes(range)
    }
}

impl Directory for RecordingDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(RecordingFileHandle {
            path: path.to_path_buf(),
            inner: self.inner.get_file_handle(path)?,
            reads: self.reads.clone(),
        }))
    }
    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }
    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }
    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.inner.open_write(path)
    }
    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let content = self.inner.atomic_read(path)?;
        self.reads.record(path, 0..content.len() as u64);
        Ok(content)
    }
    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)
    }
    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }
    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }
    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_and_lookup() {
        let recorded = RecordedReads::default();
        recorded.record(Path::new("a"), 0..4);
        recorded.record(Path::new("a"), 2..6);
        recorded.record(Path::new("a"), 100..110);
        recorded.record(Path::new("b"), 0..3);
        let content: Vec<u8> = (0u8..200).collect();
        let encoded = HotCache::encode(&recorded, |_| Ok(content.clone())).unwrap();
        let hotcache = HotCache::decode(OwnedBytes::new(encoded.clone())).unwrap();
        assert_eq!(
            hotcache.get(Path::new("a"), &(1..5)).unwrap().as_slice(),
            &[1, 2, 3, 4]
        );
        assert_eq!(
            hotcache
                .get(Path::new("a"), &(104..110))
                .unwrap()
                .as_slice(),
            &content[104..110]
        );
        assert!(hotcache.get(Path::new("a"), &(5..8)).is_none());
        assert!(hotcache.get(Path::new("a"), &(50..60)).is_none());
        assert!(hotcache.get(Path::new("c"), &(0..1)).is_none());
        assert_eq!(
            hotcache.get(Path::new("b"), &(0..3)).unwrap().as_slice(),
            &[0, 1, 2]
        );

        let err =
            HotCache::decode(OwnedBytes::new(encoded[..encoded.len() - 1].to_vec())).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
