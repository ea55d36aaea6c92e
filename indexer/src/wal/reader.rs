use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::record::{checksum, WalError, WalRecord, HEADER_LEN, MAX_RECORD_LEN};
use super::{parse_segment_file_name, segment_file_name};

/// What is on disk: segments in order, and where the log ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogScan {
    /// `(first_position, path)`, sorted.
    pub segments: Vec<(u64, PathBuf)>,
    /// Position of the last intact record (0 if none).
    pub last_position: u64,
    /// Bytes in all segments after repairing a torn tail.
    pub num_bytes: u64,
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut segments = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(error) => return Err(WalError::io(dir, error)),
    };
    for entry in entries {
        let entry = entry.map_err(|error| WalError::io(dir, error))?;
        if let Some(first) = parse_segment_file_name(&entry.file_name().to_string_lossy()) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

enum Frame {
    Record(WalRecord),
    End,
    /// A record cut short or failing its checksum where the file ends: a write that a crash
    /// interrupted.
    Torn {
        offset: u64,
        message: String,
    },
}

struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    file_len: u64,
}

impl SegmentReader {
    fn open(path: &Path) -> Result<SegmentReader, WalError> {
        let file = File::open(path).map_err(|error| WalError::io(path, error))?;
        let file_len = file
            .metadata()
            .map_err(|error| WalError::io(path, error))?
            .len();
        Ok(SegmentReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            offset: 0,
            file_len,
        })
    }

    fn corrupt(&self, offset: u64, message: String) -> WalError {
        WalError::Corrupt {
            path: self.path.clone(),
            offset,
            message,
        }
    }

    fn next(&mut self) -> Result<Frame, WalError> {
        let start = self.offset;
        let remaining = self.file_len - start;
        if remaining == 0 {
            return Ok(Frame::End);
        }
        if remaining < HEADER_LEN as u64 {
            return Ok(Frame::Torn {
                offset: start,
                message: format!("{remaining} bytes left, less than a record header"),
            });
        }
        let mut header = [0u8; HEADER_LEN];
        self.reader
            .read_exact(&mut header)
            .map_err(|error| WalError::io(&self.path, error))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let expected_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut position_bytes = [0u8; 8];
        position_bytes.copy_from_slice(&header[8..16]);
        let position = u64::from_le_bytes(position_bytes);
        let record_end = start + HEADER_LEN as u64 + len as u64;
        if len > MAX_RECORD_LEN {
            if record_end >= self.file_len {
                return Ok(Frame::Torn {
                    offset: start,
                    message: format!("length {len} runs past the end"),
                });
            }
            return Err(self.corrupt(
                start,
                format!("record length {len} exceeds the {MAX_RECORD_LEN}-byte maximum"),
            ));
        }
        if record_end > self.file_len {
            return Ok(Frame::Torn {
                offset: start,
                message: format!("record of {len} bytes runs past the end of the file"),
            });
        }
        let mut payload = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut payload)
            .map_err(|error| WalError::io(&self.path, error))?;
        self.offset = record_end;
        if checksum(position, &payload) != expected_crc {
            if record_end == self.file_len {
                return Ok(Frame::Torn {
                    offset: start,
                    message: "checksum mismatch in the last record".to_string(),
                });
            }
            return Err(self.corrupt(
                start,
                format!("checksum mismatch in record at position {position}"),
            ));
        }
        Ok(Frame::Record(WalRecord { position, payload }))
    }
}

/// Scans the log, repairing a torn tail (the last segment is cut back to its last intact
/// record, with a warning) and failing on damage anywhere else.
pub(crate) fn scan_log(dir: &Path) -> Result<LogScan, WalError> {
    let segments = list_segments(dir)?;
    let mut scan = LogScan {
        segments: segments.clone(),
        last_position: 0,
        num_bytes: 0,
    };
    for (index, (first_position, path)) in segments.iter().enumerate() {
        let is_last_segment = index + 1 == segments.len();
        let mut reader = SegmentReader::open(path)?;
        let mut expected = *first_position;
        loop {
            match reader.next()? {
                Frame::Record(record) => {
                    if record.position != expected {
                        return Err(reader.corrupt(
                            reader.offset - (HEADER_LEN + record.payload.len()) as u64,
                            format!(
                                "record has position {}, expected {expected}",
                                record.position
                            ),
                        ));
                    }
                    scan.last_position = record.position;
                    expected += 1;
                }
                Frame::End => break,
                Frame::Torn { offset, message } => {
                    if !is_last_segment {
                        return Err(reader.corrupt(
                            offset,
                            format!("{message}, in a segment that is not the last"),
                        ));
                    }
                    warn!(path = %path.display(), offset, "dropping the torn tail of the write-ahead log: {message}");
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|error| WalError::io(path, error))?;
                    file.set_len(offset)
                        .map_err(|error| WalError::io(path, error))?;
                    file.sync_all().map_err(|error| WalError::io(path, error))?;
                    reader.file_len = offset;
                    break;
                }
            }
        }
        scan.num_bytes += reader.file_len;
        if scan.last_position == 0 && *first_position > 1 {
            // An empty first segment after truncation still carries the log's position.
            scan.last_position = first_position - 1;
        }
    }
    Ok(scan)
}

/// Records with `after < position <= up_to`, in order. Only reads fsynced records, so it
/// may run while the writer appends.
pub(crate) fn read_records(dir: &Path, after: u64, up_to: u64) -> Result<Vec<WalRecord>, WalError> {
    let mut records = Vec::new();
    if up_to <= after {
        return Ok(records);
    }
    let segments = list_segments(dir)?;
    for (index, (first_position, path)) in segments.iter().enumerate() {
        let next_first = segments.get(index + 1).map(|(first, _)| *first);
        if next_first.is_some_and(|next| next <= after + 1) || *first_position > up_to {
            continue;
        }
        let mut reader = match SegmentReader::open(path) {
            Ok(reader) => reader,
            // Truncated since we listed it: its records were all published. If we needed
            // them, the count check below reports it.
            Err(WalError::Io { .. }) if !path.exists() => continue,
            Err(error) => return Err(error),
        };
        loop {
            match reader.next()? {
                Frame::Record(record) => {
                    if record.position > up_to {
                        return Ok(records);
                    }
                    if record.position > after {
                        records.push(record);
                    }
                }
                Frame::End => break,
                Frame::Torn { offset, message } => {
                    return Err(reader.corrupt(offset, format!("{message} while replaying")));
                }
            }
        }
    }
    let expected = (up_to - after) as usize;
    if records.len() != expected {
        return Err(WalError::Corrupt {
            path: dir.join(segment_file_name(after + 1)),
            offset: 0,
            message: format!(
                "replay of positions {}..={up_to} found {} records, expected {expected}",
                after + 1,
                records.len()
            ),
        });
    }
    Ok(records)
}
