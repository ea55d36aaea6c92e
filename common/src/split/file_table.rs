use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{SplitError, MAX_FILES_IN_SPLIT, MAX_FILE_NAME_LEN};

/// Where each tantivy file sits inside the split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTable {
    files: HashMap<PathBuf, Range<u64>>,
}

impl FileTable {
    pub fn insert(&mut self, path: PathBuf, range: Range<u64>) {
        self.files.insert(path, range);
    }

    pub fn get(&self, path: &Path) -> Option<Range<u64>> {
        self.files.get(path).cloned()
    }

    pub fn files(&self) -> impl Iterator<Item = (&PathBuf, &Range<u64>)> {
        self.files.iter()
    }

    /// `count: u32`, then per file `name_len: u16, name, start: u64, end: u64`, little endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<_> = self.files.iter().collect();
        entries.sort_by_key(|(_, range)| range.start);
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (path, range) in entries {
            let name = path.to_string_lossy();
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&range.start.to_le_bytes());
            out.extend_from_slice(&range.end.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8], body_len: u64) -> Result<FileTable, SplitError> {
        let mut reader = ByteReader::new(bytes, SplitError::CorruptFileTable);
        let count = reader.u32()?;
        if count > MAX_FILES_IN_SPLIT {
            return Err(SplitError::CorruptFileTable(format!(
                "announces {count} files, more than the {MAX_FILES_IN_SPLIT} a split may hold"
            )));
        }
        let mut files = HashMap::with_capacity(count as usize);
        for _ in 0..count {
            let name = reader.name()?;
            let start = reader.u64()?;
            let end = reader.u64()?;
            if start > end || end > body_len {
                return Err(SplitError::CorruptFileTable(format!(
                    "file `{name}` spans {start}..{end}, outside the {body_len} bytes of file data"
                )));
            }
            files.insert(PathBuf::from(name), start..end);
        }
        reader.expect_end()?;
        Ok(FileTable { files })
    }
}

/// A bounds-checked little-endian cursor that turns every short read into the caller's
/// corruption error.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    position: usize,
    error: fn(String) -> SplitError,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], error: fn(String) -> SplitError) -> Self {
        ByteReader {
            bytes,
            position: 0,
            error,
        }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], SplitError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                (self.error)(format!(
                    "truncated: needed {len} bytes at offset {}, only {} left",
                    self.position,
                    self.bytes.len() - self.position
                ))
            })?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SplitError> {
        let mut buf = [0u8; 2];
        buf.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(buf))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SplitError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SplitError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    pub(crate) fn name(&mut self) -> Result<String, SplitError> {
        let len = self.u16()?;
        if len > MAX_FILE_NAME_LEN {
            return Err((self.error)(format!(
                "file name of {len} bytes exceeds the {MAX_FILE_NAME_LEN}-byte bound"
            )));
        }
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| (self.error)("file name is not UTF-8".to_string()))
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn expect_end(&self) -> Result<(), SplitError> {
        if self.position != self.bytes.len() {
            return Err((self.error)(format!(
                "{} unexpected trailing bytes",
                self.bytes.len() - self.position
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let mut table = FileTable::default();
        table.insert(PathBuf::from("a.idx"), 0..10);
        table.insert(PathBuf::from("meta.json"), 10..25);
        let encoded = table.encode();
        assert_eq!(FileTable::decode(&encoded, 25).unwrap(), table);

        let err = FileTable::decode(&encoded, 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "split file table is corrupt: file `meta.json` spans 10..25, outside the 20 bytes of file data"
        );
        let err = FileTable::decode(&encoded[..encoded.len() - 3], 25).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = FileTable::decode(&u32::MAX.to_le_bytes(), 25).unwrap_err();
        assert!(err.to_string().contains("more than the 10000"), "{err}");
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(FileTable::decode(&trailing, 25)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
    }
}
