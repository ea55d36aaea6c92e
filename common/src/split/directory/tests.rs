use std::sync::atomic::Ordering;

use quarry_config::{ConfigFormat, IndexConfig};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, IndexWriter, ReloadPolicy, Term};

use super::*;
use crate::doc_mapper::DocMapper;
use crate::split::write_split_file;
use crate::storage::{CountingStorage, StorageResolver};

const CONFIG: &str = r#"
index_id: split-test
doc_mapping:
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: level, type: text, tokenizer: raw, fast: true}
    - {name: body, type: text}
  timestamp_field: ts
"#;

/// Builds a one-segment index of `num_docs` docs, packages it and uploads it.
async fn build_split(num_docs: usize) -> (DocMapper, Arc<dyn Storage>, crate::split::WrittenSplit) {
    let config = IndexConfig::parse(CONFIG.as_bytes(), ConfigFormat::Yaml).unwrap();
    let mapper = DocMapper::new(&config);
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create_in_dir(dir.path(), mapper.schema().clone()).unwrap();
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
    for i in 0..num_docs {
        let level = if i % 10 == 0 { "ERROR" } else { "INFO" };
        let line = format!(
            r#"{{"ts": {}, "level": "{level}", "body": "request {i} finished"}}"#,
            1_767_225_600 + i
        );
        writer
            .add_document(mapper.doc_from_json_bytes(line.as_bytes()).unwrap().doc)
            .unwrap();
    }
    writer.commit().unwrap();
    writer.wait_merging_threads().unwrap();
    let split_path = dir.path().join("out.split");
    let written = write_split_file(
        dir.path(),
        &split_path,
        &crate::split::VolumeSpec::default(),
    )
    .unwrap();
    let storage = StorageResolver::default()
        .resolve("ram:///split-directory-test")
        .unwrap();
    storage.put_file("s.split", &split_path).await.unwrap();
    (mapper, storage, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_costs_one_read_and_a_term_query_a_few_more() {
    let (mapper, storage, written) = build_split(5_000).await;
    assert_eq!(written.footer_offsets.end, written.file_size_bytes);
    let (counting, counts) = CountingStorage::new(storage);
    let info = SplitOpenInfo {
        storage: Arc::new(counting),
        split_path: "s.split".to_string(),
        footer_offsets: written.footer_offsets.clone(),
        range_cache: None,
    };
    let directory = SplitDirectory::open(info).await.unwrap();
    assert_eq!(counts.reads(), 1, "opening a split is one ranged read");

    let level = mapper.schema().get_field("level").unwrap();
    let counts_in_search = counts.clone();
    let (num_hits, reads_to_open_index, reads_after_query) =
        tokio::task::spawn_blocking(move || {
            let index = Index::open(directory).unwrap();
            let reader = index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()
                .unwrap();
            let searcher = reader.searcher();
            let counts = counts_in_search;
            let reads_to_open_index = counts.reads();
            let query = TermQuery::new(
                Term::from_field_text(level, "ERROR"),
                IndexRecordOption::Basic,
            );
            let (count, top) = searcher
                .search(&query, &(Count, TopDocs::with_limit(10).order_by_score()))
                .unwrap();
            assert_eq!(top.len(), 10);
            (count, reads_to_open_index, counts.reads())
        })
        .await
        .unwrap();
    assert_eq!(num_hits, 500);
    assert_eq!(
        reads_to_open_index, 1,
        "the hotcache serves everything tantivy reads on open"
    );
    // Measured: one read for the term dictionary block, one for the postings.
    assert!(
        reads_after_query - reads_to_open_index <= 3,
        "term query took {} reads",
        reads_after_query - reads_to_open_index
    );
    assert!(
        counts.bytes_read.load(Ordering::SeqCst) < written.file_size_bytes,
        "a query reads a fraction of the split"
    );
}

#[tokio::test]
async fn wrong_footer_offsets_are_reported() {
    let (_, storage, written) = build_split(10).await;
    let info = SplitOpenInfo {
        storage,
        split_path: "s.split".to_string(),
        footer_offsets: written.footer_offsets.start + 1..written.footer_offsets.end,
        range_cache: None,
    };
    let err = SplitDirectory::open(info).await.unwrap_err();
    assert!(
        matches!(
            err,
            SplitError::CorruptFooter(_) | SplitError::ChecksumMismatch { .. }
        ),
        "{err}"
    );
}
