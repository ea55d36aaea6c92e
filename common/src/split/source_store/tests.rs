use std::sync::Arc;

use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::fastfield::AliveBitSet;
use tantivy::query::TermQuery;
use tantivy::schema::{BytesOptions, IndexRecordOption, NumericOptions, Schema, STRING};
use tantivy::store::ZstdCompressor;
use tantivy::{doc, IndexSettings, ReloadPolicy, Term};

use super::*;

fn source_of(n: u64) -> String {
    let level = ["INFO", "WARN", "ERROR"][(n % 3) as usize];
    format!(
        r#"{{"timestamp":"2026-01-01T00:{:02}:{:02}.{:06}Z","n":{n},"level":"{level}","trace_id":"{:032x}","body":"request {n} took {} ms"}}"#,
        n / 60 % 60,
        n % 60,
        n * 7 % 1_000_000,
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        n * 13 % 1000
    )
}

fn schema() -> (Schema, Field, Field, Field) {
    let mut builder = Schema::builder();
    let n = builder.add_u64_field("n", NumericOptions::default().set_fast().set_indexed());
    let level = builder.add_text_field("level", STRING);
    let source = builder.add_bytes_field(SOURCE_FIELD_NAME, BytesOptions::default());
    (builder.build(), n, level, source)
}

fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(3),
        }),
        // Small blocks, so that segments hold many.
        docstore_blocksize: 4096,
        ..IndexSettings::default()
    }
}

/// Every document of every segment reads back the source it was given.
fn check_sources(index: &Index, n_field: Field) -> usize {
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .unwrap();
    let searcher: tantivy::Searcher = reader.searcher();
    let mut checked = 0;
    for segment in searcher.segment_readers() {
        let store = SourceStoreReader::open_segment(segment).unwrap().unwrap();
        assert_eq!(store.num_docs(), segment.max_doc());
        let column = segment.fast_fields().u64("n").unwrap();
        let alive: Vec<DocId> = segment.doc_ids_alive().collect();
        // Out of order and with repeats, as fetches ask.
        let mut asked = alive.clone();
        asked.reverse();
        asked.extend(alive.iter().take(3));
        let sources = store.sources(&asked).unwrap();
        for (doc, source) in asked.iter().zip(sources) {
            let n = column.first(*doc).unwrap();
            assert_eq!(String::from_utf8(source.unwrap()).unwrap(), source_of(n));
        }
        checked += alive.len();
        let _ = n_field;
    }
    checked
}

#[test]
fn sources_follow_documents_through_indexing_threads_merges_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, n, level, source) = schema();
    let index = Index::builder()
        .schema(schema)
        .settings(settings())
        .register_plugin(Arc::new(SourceStorePlugin))
        .create_in_dir(dir.path())
        .unwrap();
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(2, 30_000_000).unwrap();
    for value in 0..5000u64 {
        let level_text = ["INFO", "WARN", "ERROR"][(value % 3) as usize];
        writer
            .add_document(
                doc!(n => value, level => level_text, source => source_of(value).into_bytes()),
            )
            .unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    assert_eq!(check_sources(&index, n), 5000);

    // Merge every segment into one without the WARN documents, the way delete tasks do.
    let mut opened = Index::open_in_dir(dir.path()).unwrap();
    register_on_opened(&mut opened).unwrap();
    let segments = opened.searchable_segments().unwrap();
    let searcher = opened.reader().unwrap().searcher();
    let warn = TermQuery::new(
        Term::from_field_text(level, "WARN"),
        IndexRecordOption::Basic,
    );
    let matched = searcher.search(&warn, &DocSetCollector).unwrap();
    let filters: Vec<Option<AliveBitSet>> = searcher
        .segment_readers()
        .iter()
        .enumerate()
        .map(|(ord, segment)| {
            let mut bitset = tantivy::BitSet::with_max_value_and_full(segment.max_doc());
            for address in matched.iter().filter(|a| a.segment_ord as usize == ord) {
                bitset.remove(address.doc_id);
            }
            let mut bytes = Vec::new();
            tantivy::fastfield::write_alive_bitset(&bitset, &mut bytes).unwrap();
            Some(AliveBitSet::open(tantivy::directory::OwnedBytes::new(
                bytes,
            )))
        })
        .collect();
    let merged_dir = tempfile::tempdir().unwrap();
    let merged = tantivy::indexer::merge_filtered_segments(
        &segments,
        settings(),
        filters,
        MmapDirectory::open(merged_dir.path()).unwrap(),
    )
    .unwrap();
    let kept = (0..5000u64).filter(|value| value % 3 != 1).count();
    assert_eq!(check_sources(&merged, n), kept);

    // And a plain merge of the merged index with the original keeps everything.
    let mut merged = Index::open_in_dir(merged_dir.path()).unwrap();
    register_on_opened(&mut merged).unwrap();
    let mut segments = merged.searchable_segments().unwrap();
    segments.extend(opened.searchable_segments().unwrap());
    let again_dir = tempfile::tempdir().unwrap();
    let num_segments = segments.len();
    let again = tantivy::indexer::merge_filtered_segments(
        &segments,
        settings(),
        vec![None; num_segments],
        MmapDirectory::open(again_dir.path()).unwrap(),
    )
    .unwrap();
    assert_eq!(check_sources(&again, n), kept + 5000);
}

#[test]
fn opened_indexes_get_the_plugin_back_only_when_created_with_it() {
    // tantivy merges an index opened without its plugin as if it had none, dropping the
    // sources: whoever opens an index to merge it calls `register_on_opened`.
    let with_dir = tempfile::tempdir().unwrap();
    let without_dir = tempfile::tempdir().unwrap();
    let (schema, _, _, _) = schema();
    Index::builder()
        .schema(schema.clone())
        .register_plugin(Arc::new(SourceStorePlugin))
        .create_in_dir(with_dir.path())
        .unwrap();
    Index::builder()
        .schema(schema)
        .create_in_dir(without_dir.path())
        .unwrap();
    let mut with = Index::open_in_dir(with_dir.path()).unwrap();
    register_on_opened(&mut with).unwrap();
    assert_eq!(with.custom_plugins().len(), 1);
    let mut without = Index::open_in_dir(without_dir.path()).unwrap();
    register_on_opened(&mut without).unwrap();
    assert!(without.custom_plugins().is_empty());
}

#[test]
fn the_store_compresses_logs_better_than_their_lines() {
    let sources: Vec<String> = (0..20_000).map(source_of).collect();
    let mut writer = SourceStoreWriter::new(Vec::new(), 1 << 20, 6);
    for source in &sources {
        writer.add(source.as_bytes()).unwrap();
    }
    let file = writer.finish().unwrap();
    let lines = sources.join("\n");
    let row_wise = zstd::bulk::compress(lines.as_bytes(), 6).unwrap();
    assert!(
        file.len() < row_wise.len(),
        "{} >= {}",
        file.len(),
        row_wise.len()
    );
    let reader = SourceStoreReader::open(FileSlice::from(file)).unwrap();
    let docs: Vec<DocId> = vec![0, 19_999, 7, 12_345];
    let read = reader.sources(&docs).unwrap();
    for (doc, source) in docs.iter().zip(read) {
        assert_eq!(source.unwrap(), sources[*doc as usize].as_bytes());
    }
    assert!(reader.sources(&[20_000]).is_err());
}

#[test]
fn damaged_files_are_errors() {
    let mut writer = SourceStoreWriter::new(Vec::new(), 100, 3);
    for n in 0..50 {
        writer.add(source_of(n).as_bytes()).unwrap();
    }
    let file = writer.finish().unwrap();
    assert!(SourceStoreReader::open(FileSlice::from(file[..10].to_vec())).is_err());
    let mut bad_magic = file.clone();
    let len = bad_magic.len();
    bad_magic[len - 1] ^= 1;
    assert!(SourceStoreReader::open(FileSlice::from(bad_magic)).is_err());
    let mut bad_block = file.clone();
    bad_block[5] ^= 0xff;
    if let Ok(reader) = SourceStoreReader::open(FileSlice::from(bad_block)) {
        let all: Vec<DocId> = (0..50).collect();
        assert!(reader.sources(&all).is_err());
    }
}

#[test]
fn the_block_cache_forgets_the_least_recently_used_blocks() {
    let block = |text: &str| {
        Arc::new(DecodedBlock::decode(block::encode_block(&[text.as_bytes()])).unwrap())
    };
    let size = block("a").heap_bytes();
    let mut cache = BlockCache::new();
    let capacity = 3 * size;
    for ordinal in 0..3 {
        cache.insert((7, ordinal), block("a"), capacity);
    }
    // Using block 0 makes block 1 the least recently used.
    assert!(cache.get((7, 0)).is_some());
    cache.insert((7, 3), block("a"), capacity);
    assert!(cache.get((7, 1)).is_none());
    for kept in [0, 2, 3] {
        assert!(cache.get((7, kept)).is_some(), "block {kept}");
    }
    assert_eq!(cache.bytes, capacity);
    // The same block decoded twice at once is kept once.
    cache.insert((7, 3), block("a"), capacity);
    assert_eq!((cache.blocks.len(), cache.by_use.len()), (3, 3));
    assert_eq!(cache.bytes, capacity);
    // A smaller capacity (a node's configuration) evicts down to it.
    cache.insert((8, 0), block("a"), size);
    assert_eq!((cache.blocks.len(), cache.bytes), (1, size));
    assert!(cache.get((8, 0)).is_some());
}
