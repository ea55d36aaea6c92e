//! The reverse of packaging: a split's tantivy files written back into a directory, for
//! work that reads whole splits (merges), where ranged reads would cost one GET each.

use std::ops::Range;
use std::path::Path;

use super::{FileTable, SplitError, SplitFooter};
use crate::storage::Storage;

/// Fetches the split's file table, then each file, into `out_dir` (which must exist).
/// Memory stays bounded by the largest file of the split.
pub async fn download_split_files(
    storage: &dyn Storage,
    split_path: &str,
    footer_offsets: Range<u64>,
    out_dir: &Path,
) -> Result<(), SplitError> {
    let tail = storage
        .get_range(split_path, footer_offsets.clone())
        .await
        .map_err(|error| SplitError::Io(error.to_string()))?;
    let footer = SplitFooter::decode_and_check(&tail)?;
    if footer.file_table_offset != footer_offsets.start {
        return Err(SplitError::CorruptFooter(format!(
            "footer says the file table starts at {}, the split metadata says {}",
            footer.file_table_offset, footer_offsets.start
        )));
    }
    let table_len = footer.file_table_len as usize;
    let file_table = FileTable::decode(&tail[..table_len], footer.file_table_offset)?;
    for (name, range) in file_table.files() {
        // Names come from storage: never let one write outside `out_dir`.
        let plain_name = matches!(
            name.components().collect::<Vec<_>>().as_slice(),
            [std::path::Component::Normal(_)]
        );
        if !plain_name {
            return Err(SplitError::CorruptFileTable(format!(
                "file name `{}` is not a plain file name",
                name.display()
            )));
        }
        let bytes = storage
            .get_range(split_path, range.clone())
            .await
            .map_err(|error| SplitError::Io(error.to_string()))?;
        let path = out_dir.join(name);
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|error| SplitError::Io(format!("writing `{}`: {error}", path.display())))?;
    }
    Ok(())
}
