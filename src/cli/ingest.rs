use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use quarry_indexer::CommitMode;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::client::{Client, IngestOutcome};

/// Failures printed at the end; the rest are counted.
const MAX_PRINTED_FAILURES: usize = 20;

pub(crate) struct IngestSummary {
    num_docs: u64,
    num_rejected: u64,
}

impl IngestSummary {
    pub(crate) fn exit_code(&self) -> ExitCode {
        if self.num_rejected > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// One request's batch: where it starts in the file, for reporting rejected lines.
struct SentBatch {
    first_line: usize,
    num_bytes: u64,
    response: serde_json::Value,
}

/// Streams the file in batches of whole lines, `concurrency` requests in flight (so the
/// node maps one batch while it syncs another to its log), retrying when the node pushes
/// back. The final request, which carries the commit mode, goes once the others are
/// acknowledged: a `force` commit covers only what the node has already accepted.
pub(crate) async fn ingest_file(
    client: &Client,
    index_id: &str,
    input_path: &Path,
    batch_size: usize,
    concurrency: usize,
    commit_mode: CommitMode,
) -> anyhow::Result<IngestSummary> {
    let reader: Box<dyn AsyncRead + Unpin> =
        if input_path == Path::new("-") {
            Box::new(tokio::io::stdin())
        } else {
            Box::new(tokio::fs::File::open(input_path).await.map_err(|error| {
                anyhow::anyhow!("cannot open `{}`: {error}", input_path.display())
            })?)
        };
    let total_bytes = std::fs::metadata(input_path)
        .map(|metadata| metadata.len())
        .ok()
        .filter(|_| input_path != Path::new("-"));
    let progress = match total_bytes {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut reader = reader;
    let started = Instant::now();
    let mut report = IngestReport {
        summary: IngestSummary {
            num_docs: 0,
            num_rejected: 0,
        },
        failures: Vec::new(),
        progress,
        started,
    };
    let mut in_flight = FuturesOrdered::new();
    // Whole lines are cut from the file as bytes: the node checks each line, so there is
    // no need to split, validate and copy them here.
    let mut buffer: Vec<u8> = Vec::with_capacity(batch_size);
    let mut wanted_len = batch_size;
    let mut next_line = 1usize;
    let mut eof = false;
    loop {
        while !eof && buffer.len() < wanted_len {
            buffer.reserve(wanted_len - buffer.len());
            if reader.read_buf(&mut buffer).await? == 0 {
                eof = true;
            }
        }
        let cut = if eof {
            buffer.len()
        } else {
            match buffer.iter().rposition(|byte| *byte == b'\n') {
                Some(newline) => newline + 1,
                // A line longer than a batch is sent whole, alone.
                None => {
                    wanted_len = buffer.len() + batch_size;
                    continue;
                }
            }
        };
        wanted_len = batch_size;
        let rest = buffer.split_off(cut);
        let body = std::mem::replace(&mut buffer, rest);
        let first_line = next_line;
        next_line += body.iter().filter(|byte| **byte == b'\n').count();
        if eof {
            while let Some(sent) = in_flight.next().await {
                report.add(sent?);
            }
            let has_lines = body.iter().any(|byte| !byte.is_ascii_whitespace());
            if has_lines || commit_mode != CommitMode::Auto {
                let commit = match commit_mode {
                    CommitMode::Force => "force",
                    CommitMode::WaitFor => "wait_for",
                    CommitMode::Auto => "auto",
                };
                let sent = send_batch(client, index_id, commit, first_line, body).await?;
                report.add(sent);
            }
            break;
        }
        in_flight.push_back(send_batch(client, index_id, "auto", first_line, body));
        if in_flight.len() >= concurrency.max(1) {
            if let Some(sent) = in_flight.next().await {
                report.add(sent?);
            }
        }
    }
    Ok(report.finish(index_id))
}

struct IngestReport {
    summary: IngestSummary,
    failures: Vec<String>,
    progress: ProgressBar,
    started: Instant,
}

impl IngestReport {
    fn add(&mut self, sent: SentBatch) {
        let response = &sent.response;
        self.summary.num_docs += response["num_ingested_docs"].as_u64().unwrap_or_default();
        self.summary.num_rejected += response["num_rejected_docs"].as_u64().unwrap_or_default();
        for failure in response["parse_failures"].as_array().into_iter().flatten() {
            if self.failures.len() < MAX_PRINTED_FAILURES {
                // Line numbers in the response are per request; report them per file.
                let line =
                    failure["line"].as_u64().unwrap_or_default() as usize + sent.first_line - 1;
                self.failures.push(format!(
                    "line {line}: {}",
                    failure["reason"].as_str().unwrap_or_default()
                ));
            }
        }
        self.progress.inc(sent.num_bytes);
        let docs_per_sec =
            self.summary.num_docs as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        self.progress.set_message(format!(
            "{} docs ({docs_per_sec:.0} docs/s), {} rejected",
            self.summary.num_docs, self.summary.num_rejected
        ));
    }

    fn finish(self, index_id: &str) -> IngestSummary {
        self.progress.finish();
        let summary = self.summary;
        println!(
            "Ingested {} documents into `{index_id}` in {:.1}s; {} rejected.",
            summary.num_docs,
            self.started.elapsed().as_secs_f64(),
            summary.num_rejected
        );
        if !self.failures.is_empty() {
            eprintln!("Rejected documents:");
            for failure in &self.failures {
                eprintln!("  {failure}");
            }
            if summary.num_rejected as usize > self.failures.len() {
                eprintln!(
                    "  … and {} more",
                    summary.num_rejected as usize - self.failures.len()
                );
            }
        }
        summary
    }
}

async fn send_batch(
    client: &Client,
    index_id: &str,
    commit: &str,
    first_line: usize,
    body: Vec<u8>,
) -> anyhow::Result<SentBatch> {
    let num_bytes = body.len() as u64;
    let response = send_with_retries(client, index_id, commit, Bytes::from(body)).await?;
    Ok(SentBatch {
        first_line,
        num_bytes,
        response,
    })
}

async fn send_with_retries(
    client: &Client,
    index_id: &str,
    commit: &str,
    body: Bytes,
) -> anyhow::Result<serde_json::Value> {
    let mut backoff = Duration::from_millis(250);
    loop {
        match client.ingest(index_id, commit, body.clone()).await? {
            IngestOutcome::Accepted(response) => return Ok(response),
            IngestOutcome::Busy(retry_after) => {
                tokio::time::sleep(retry_after.unwrap_or(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
