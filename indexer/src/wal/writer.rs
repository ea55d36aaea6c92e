use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;
use tracing::{error, info};

use super::reader::scan_log;
use super::record::{encode_record, WalError, MAX_RECORD_LEN};
use super::segment_file_name;

type Reply = oneshot::Sender<Result<u64, WalError>>;

enum Request {
    Append {
        payload: Vec<u8>,
        reply: Reply,
    },
    /// Deletes segments whose records are all at or below the position.
    Truncate {
        up_to: u64,
    },
}

/// Appends records to the log of one shard from a dedicated thread. Requests that arrive
/// while an fsync is in progress are written together and share the next fsync (group
/// commit), so many small concurrent batches do not each pay a full fsync.
pub(crate) struct WalWriter {
    dir: PathBuf,
    requests: mpsc::Sender<Request>,
    last_position: Arc<AtomicU64>,
    num_bytes: Arc<AtomicU64>,
}

struct WriterState {
    dir: PathBuf,
    segments: Vec<(u64, PathBuf)>,
    current: File,
    current_len: u64,
    last_position: Arc<AtomicU64>,
    num_bytes: Arc<AtomicU64>,
    options: WalOptions,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct WalOptions {
    pub segment_target_bytes: u64,
    /// fsync before acknowledging (see `ingest.wal_sync`).
    pub sync: bool,
}

/// fsyncs done by all logs of the process: the benchmark reports them per second.
pub static WAL_FSYNCS: AtomicU64 = AtomicU64::new(0);

impl WalWriter {
    /// Opens (or creates) the log in `dir`, repairing a torn tail. New positions start
    /// after `resume_after` at least: the published checkpoint, so that a log lost or
    /// removed by hand can never hand out positions the metastore considers done.
    pub(crate) fn open(
        dir: &Path,
        options: WalOptions,
        resume_after: u64,
    ) -> Result<WalWriter, WalError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|error| WalError::io(dir, error))?;
            // The new directory's own entry must survive a power loss, or the whole log
            // would vanish with it.
            if let Some(parent) = dir.parent() {
                File::open(parent)
                    .and_then(|parent| parent.sync_all())
                    .map_err(|error| WalError::io(parent, error))?;
            }
        }
        let mut scan = scan_log(dir)?;
        if scan.last_position < resume_after {
            let path = dir.join(segment_file_name(resume_after + 1));
            create_segment(&path, dir)?;
            scan.segments.push((resume_after + 1, path));
            scan.last_position = resume_after;
        }
        let last_position = Arc::new(AtomicU64::new(scan.last_position));
        let num_bytes = Arc::new(AtomicU64::new(scan.num_bytes));
        let mut segments = scan.segments;
        let (current, current_len) = match segments.last() {
            Some((_, path)) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|error| WalError::io(path, error))?;
                let len = file
                    .metadata()
                    .map_err(|error| WalError::io(path, error))?
                    .len();
                (file, len)
            }
            None => {
                let path = dir.join(segment_file_name(scan.last_position + 1));
                let file = create_segment(&path, dir)?;
                segments.push((scan.last_position + 1, path));
                (file, 0)
            }
        };
        let state = WriterState {
            dir: dir.to_path_buf(),
            segments,
            current,
            current_len,
            last_position: last_position.clone(),
            num_bytes: num_bytes.clone(),
            options,
        };
        let (requests, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("wal-writer".to_string())
            .spawn(move || state.run(receiver))
            .map_err(|error| WalError::io(dir, error))?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            requests,
            last_position,
            num_bytes,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Position of the last durable record.
    pub(crate) fn last_position(&self) -> u64 {
        self.last_position.load(Ordering::SeqCst)
    }

    pub(crate) fn num_bytes(&self) -> u64 {
        self.num_bytes.load(Ordering::SeqCst)
    }

    /// Appends a record; resolves with its position once it is on disk.
    pub(crate) async fn append(&self, payload: Vec<u8>) -> Result<u64, WalError> {
        if payload.len() > MAX_RECORD_LEN as usize {
            return Err(WalError::RecordTooLarge(payload.len()));
        }
        let (reply, receiver) = oneshot::channel();
        self.requests
            .send(Request::Append { payload, reply })
            .map_err(|_| WalError::Closed)?;
        receiver.await.map_err(|_| WalError::Closed)?
    }

    pub(crate) fn truncate(&self, up_to: u64) {
        let _ = self.requests.send(Request::Truncate { up_to });
    }
}

fn create_segment(path: &Path, dir: &Path) -> Result<File, WalError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| WalError::io(path, error))?;
    // The new name must survive a crash too.
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| WalError::io(dir, error))?;
    Ok(file)
}

impl WriterState {
    fn run(mut self, receiver: mpsc::Receiver<Request>) {
        let mut buffer = Vec::new();
        while let Ok(first) = receiver.recv() {
            let mut pending = vec![first];
            // Everything queued while we were writing joins this group.
            while let Ok(next) = receiver.try_recv() {
                pending.push(next);
            }
            let mut replies: Vec<(Reply, u64)> = Vec::new();
            let mut truncate_to = None;
            buffer.clear();
            let mut position = self.last_position.load(Ordering::SeqCst);
            for request in pending {
                match request {
                    Request::Append { payload, reply } => {
                        position += 1;
                        encode_record(position, &payload, &mut buffer);
                        replies.push((reply, position));
                    }
                    Request::Truncate { up_to } => {
                        truncate_to = Some(truncate_to.unwrap_or(0).max(up_to))
                    }
                }
            }
            if !replies.is_empty() {
                match self.write_group(&buffer) {
                    Ok(()) => {
                        self.last_position.store(position, Ordering::SeqCst);
                        for (reply, position) in replies {
                            let _ = reply.send(Ok(position));
                        }
                        if self.current_len >= self.options.segment_target_bytes {
                            if let Err(error) = self.roll(position + 1) {
                                error!("cannot start a new write-ahead log segment: {error}");
                            }
                        }
                    }
                    Err(error) => {
                        error!("write-ahead log append failed: {error}");
                        // What was written may be partial: the next open repairs the tail.
                        for (reply, _) in replies {
                            let _ = reply.send(Err(WalError::Io {
                                path: self.dir.clone(),
                                message: error.to_string(),
                            }));
                        }
                        return;
                    }
                }
            }
            if let Some(up_to) = truncate_to {
                self.truncate(up_to);
            }
        }
    }

    fn write_group(&mut self, buffer: &[u8]) -> Result<(), WalError> {
        let path = self
            .segments
            .last()
            .map(|(_, path)| path.clone())
            .unwrap_or_else(|| self.dir.clone());
        self.current
            .write_all(buffer)
            .map_err(|error| WalError::io(&path, error))?;
        if self.options.sync {
            self.current
                .sync_data()
                .map_err(|error| WalError::io(&path, error))?;
            WAL_FSYNCS.fetch_add(1, Ordering::Relaxed);
        }
        self.current_len += buffer.len() as u64;
        self.num_bytes
            .fetch_add(buffer.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    fn roll(&mut self, first_position: u64) -> Result<(), WalError> {
        let path = self.dir.join(segment_file_name(first_position));
        self.current = create_segment(&path, &self.dir)?;
        self.current_len = 0;
        self.segments.push((first_position, path));
        Ok(())
    }

    /// A segment can go once the next one starts at or below `up_to + 1`; the current
    /// segment always stays.
    fn truncate(&mut self, up_to: u64) {
        while self.segments.len() > 1 && self.segments[1].0 <= up_to + 1 {
            let (_, path) = self.segments.remove(0);
            let len = std::fs::metadata(&path)
                .map(|metadata| metadata.len())
                .unwrap_or(0);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.num_bytes.fetch_sub(
                        len.min(self.num_bytes.load(Ordering::SeqCst)),
                        Ordering::SeqCst,
                    );
                    info!(path = %path.display(), "write-ahead log segment truncated");
                }
                Err(error) => {
                    error!(path = %path.display(), "cannot delete write-ahead log segment: {error}");
                    self.segments.insert(0, (0, path));
                    return;
                }
            }
        }
    }
}
