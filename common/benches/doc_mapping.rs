//! How fast JSON lines become tantivy documents: the CPU the ingest path spends per
//! document before tantivy sees it.
//!
//!   cargo run --release -- generate-logs --docs 1000000 --seed 42 > logs.ndjson
//!   cargo bench -p quarry-common --bench doc_mapping -- logs.ndjson [index-config.yaml]

use std::time::Instant;

use quarry_common::doc_mapper::{DocMapper, ParsedDoc};
use quarry_config::{ConfigFormat, IndexConfig};

type MapLine<'a> = dyn Fn(&[u8]) -> Option<ParsedDoc> + 'a;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let Some(input) = args.first() else {
        eprintln!("usage: doc_mapping LOGS.ndjson [INDEX_CONFIG.yaml]");
        return;
    };
    let config_path = args.get(1).cloned().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/bench-logs.yaml").to_string()
    });
    let config_text = std::fs::read(&config_path).expect("reading the index config");
    let config =
        IndexConfig::parse(&config_text, ConfigFormat::Yaml).expect("a valid index config");
    let doc_mapper = DocMapper::new(&config);
    let text = std::fs::read(input).expect("reading the input");
    let lines: Vec<&[u8]> = text
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    // The reference path (a serde_json tree, then the mapping) beside the one ingest takes.
    let reference = |line: &[u8]| match serde_json::from_slice(line) {
        Ok(serde_json::Value::Object(object)) => doc_mapper.doc_from_json_object(object).ok(),
        _ => None,
    };
    let direct = |line: &[u8]| doc_mapper.doc_from_json_bytes(line).ok();
    let paths: [(&str, &MapLine); 2] =
        [("reference", &reference), ("doc_from_json_bytes", &direct)];
    for (name, map) in paths {
        for round in 0..3 {
            let started = Instant::now();
            let mut num_values = 0usize;
            for line in &lines {
                let parsed = map(line).expect("a valid document");
                num_values += parsed.doc.len();
            }
            let elapsed = started.elapsed();
            println!(
                "{name:>20} round {round}: {} docs in {:.3} s -> {:.0} ns/doc, {:.0} MB/s ({num_values} values)",
                lines.len(),
                elapsed.as_secs_f64(),
                elapsed.as_nanos() as f64 / lines.len() as f64,
                text.len() as f64 / elapsed.as_secs_f64() / 1e6,
            );
        }
    }
}
