use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use quarry_indexer::CommitMode;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

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

/// Streams the file in batches of whole lines, retrying when the node pushes back.
pub(crate) async fn ingest_file(
    client: &Client,
    index_id: &str,
    input_path: &Path,
    batch_size: usize,
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
    let mut lines = BufReader::with_capacity(1 << 20, reader).lines();
    let started = Instant::now();
    let mut summary = IngestSummary {
        num_docs: 0,
        num_rejected: 0,
    };
    let mut failures: Vec<String> = Vec::new();
    let mut batch: Vec<u8> = Vec::with_capacity(batch_size);
    let mut batch_first_line = 1usize;
    let mut line_number = 0usize;
    // Batches are sent with `auto`; the requested commit mode goes with the final request.
    loop {
        let line = lines.next_line().await?;
        if let Some(line) = &line {
            line_number += 1;
            if batch.is_empty() {
                batch_first_line = line_number;
            }
            batch.extend_from_slice(line.as_bytes());
            batch.push(b'\n');
            if batch.len() < batch_size {
                continue;
            }
        }
        let is_last = line.is_none();
        if !batch.is_empty() || (is_last && commit_mode != CommitMode::Auto) {
            let commit = match (is_last, commit_mode) {
                (true, CommitMode::Force) => "force",
                (true, CommitMode::WaitFor) => "wait_for",
                _ => "auto",
            };
            let sent_bytes = batch.len() as u64;
            let response =
                send_with_retries(client, index_id, commit, std::mem::take(&mut batch)).await?;
            summary.num_docs += response["num_ingested_docs"].as_u64().unwrap_or_default();
            summary.num_rejected += response["num_rejected_docs"].as_u64().unwrap_or_default();
            for failure in response["parse_failures"].as_array().into_iter().flatten() {
                if failures.len() < MAX_PRINTED_FAILURES {
                    // Line numbers in the response are per request; report them per file.
                    let line = failure["line"].as_u64().unwrap_or_default() as usize
                        + batch_first_line
                        - 1;
                    failures.push(format!(
                        "line {line}: {}",
                        failure["reason"].as_str().unwrap_or_default()
                    ));
                }
            }
            progress.inc(sent_bytes);
            let docs_per_sec = summary.num_docs as f64 / started.elapsed().as_secs_f64().max(0.001);
            progress.set_message(format!(
                "{} docs ({docs_per_sec:.0} docs/s), {} rejected",
                summary.num_docs, summary.num_rejected
            ));
        }
        if is_last {
            break;
        }
    }
    progress.finish();
    println!(
        "Ingested {} documents into `{index_id}` in {:.1}s; {} rejected.",
        summary.num_docs,
        started.elapsed().as_secs_f64(),
        summary.num_rejected
    );
    if !failures.is_empty() {
        eprintln!("Rejected documents:");
        for failure in &failures {
            eprintln!("  {failure}");
        }
        if summary.num_rejected as usize > failures.len() {
            eprintln!(
                "  … and {} more",
                summary.num_rejected as usize - failures.len()
            );
        }
    }
    Ok(summary)
}

async fn send_with_retries(
    client: &Client,
    index_id: &str,
    commit: &str,
    body: Vec<u8>,
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
