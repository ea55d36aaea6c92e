use std::io::Write;

use super::*;

fn small_segments() -> WalOptions {
    WalOptions {
        segment_target_bytes: 100,
        sync: true,
    }
}

fn default_options() -> WalOptions {
    WalOptions {
        segment_target_bytes: SEGMENT_TARGET_BYTES,
        sync: true,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("{{\"n\": {i}}}").into_bytes()
}

#[tokio::test]
async fn append_read_rotate_truncate_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let writer = WalWriter::open(dir.path(), small_segments(), 0).unwrap();
    for i in 1..=20 {
        assert_eq!(writer.append(payload(i)).await.unwrap(), i);
    }
    assert_eq!(writer.last_position(), 20);
    let segments = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(segments > 3, "small segments roll over: {segments}");

    let records = read_records(dir.path(), 5, 12).unwrap();
    let positions: Vec<u64> = records.iter().map(|record| record.position).collect();
    assert_eq!(positions, (6..=12).collect::<Vec<_>>());
    assert_eq!(records[0].payload, payload(6));

    writer.truncate(12);
    writer.append(payload(21)).await.unwrap();
    // Truncation runs on the writer thread, after the appends queued with it; a scan that
    // races a deletion fails, so wait for two scans in a row to agree.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut previous_first = None;
    loop {
        let first = scan_log(dir.path())
            .ok()
            .and_then(|scan| scan.segments.first().map(|segment| segment.0));
        if first.is_some_and(|first| first != 1) && first == previous_first {
            break;
        }
        previous_first = first;
        assert!(
            std::time::Instant::now() < deadline,
            "truncation did not happen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let scan = scan_log(dir.path()).unwrap();
    assert!(
        scan.segments.first().unwrap().0 <= 13,
        "nothing unpublished is deleted"
    );
    assert!(scan.segments.len() < segments + 1);
    assert!(read_records(dir.path(), 12, 21).is_ok());
    assert!(
        matches!(
            read_records(dir.path(), 0, 21),
            Err(WalError::Corrupt { .. })
        ),
        "truncated records are gone"
    );
    drop(writer);

    // Positions continue after a reopen.
    let reopened = WalWriter::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(reopened.last_position(), 21);
    assert_eq!(reopened.append(payload(22)).await.unwrap(), 22);
}

#[tokio::test]
async fn concurrent_appends_get_consecutive_positions() {
    let dir = tempfile::tempdir().unwrap();
    let writer = std::sync::Arc::new(WalWriter::open(dir.path(), default_options(), 0).unwrap());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            writer.append(payload(i)).await.unwrap()
        }));
    }
    let mut positions = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap());
    }
    positions.sort();
    assert_eq!(positions, (1..=64).collect::<Vec<_>>());
    assert_eq!(read_records(dir.path(), 0, 64).unwrap().len(), 64);
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let scan = scan_log(dir).unwrap();
    scan.segments.last().unwrap().1.clone()
}

#[tokio::test]
async fn torn_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let writer = WalWriter::open(dir.path(), default_options(), 0).unwrap();
    for i in 1..=3 {
        writer.append(payload(i)).await.unwrap();
    }
    drop(writer);
    let path = last_segment(dir.path());
    let intact_len = std::fs::metadata(&path).unwrap().len();
    // A crash in the middle of writing record 4: its header and half its payload.
    let mut torn = Vec::new();
    record::encode_record(4, &payload(4), &mut torn);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&torn[..torn.len() - 3])
        .unwrap();

    let writer = WalWriter::open(dir.path(), default_options(), 0).unwrap();
    assert_eq!(writer.last_position(), 3);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), intact_len);
    assert_eq!(writer.append(payload(4)).await.unwrap(), 4);
    assert_eq!(read_records(dir.path(), 0, 4).unwrap().len(), 4);
}

#[tokio::test]
async fn corrupt_middle_stops_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let writer = WalWriter::open(dir.path(), default_options(), 0).unwrap();
    for i in 1..=3 {
        writer.append(payload(i)).await.unwrap();
    }
    drop(writer);
    let path = last_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let record_len = bytes.len() / 3;
    bytes[record_len + 20] ^= 0xff; // a payload byte of record 2
    std::fs::write(&path, &bytes).unwrap();
    let error = WalWriter::open(dir.path(), default_options(), 0)
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("at byte offset {record_len}")),
        "{message}"
    );
    assert!(message.contains("checksum mismatch"), "{message}");
}

/// Random bytes must never panic the reader: they are either a torn tail or corruption.
#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        let len = (next() % 512) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 {
            // Start with a valid record so the garbage sits after real data.
            let mut valid = Vec::new();
            record::encode_record(1, b"ok", &mut valid);
            valid.extend_from_slice(&bytes);
            bytes = valid;
        }
        std::fs::write(dir.path().join(segment_file_name(1)), &bytes).unwrap();
        let _ = scan_log(dir.path());
        let _ = read_records(dir.path(), 0, 10);
    }
}

#[tokio::test]
async fn positions_never_restart_below_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // The log is gone (say, a new disk) but the metastore says 41 records were published.
    let writer = WalWriter::open(dir.path(), default_options(), 41).unwrap();
    assert_eq!(writer.append(payload(1)).await.unwrap(), 42);
    drop(writer);
    let reopened = WalWriter::open(dir.path(), default_options(), 41).unwrap();
    assert_eq!(reopened.last_position(), 42);
    assert_eq!(
        read_records(dir.path(), 41, 42).unwrap()[0].payload,
        payload(1)
    );
}
