//! The documents with given log ids (`quarry_common::doc_mapper::log_ids`): the `ids`
//! query and the get API for documents sent without an `_id`.
//!
//! Columns are looked up by name, not by schema field: a split written before the columns
//! existed has none and matches nothing, where tantivy's fast-field range would fail on a
//! field its schema lacks. Each wanted position is searched only in segments whose position
//! column spans it, and segments hold runs of positions, so a lookup touches few segments.

use quarry_common::doc_mapper::log_ids::{
    LOG_LINE_FIELD_NAME, LOG_POSITION_FIELD_NAME, LOG_SHARD_FIELD_NAME,
};
use quarry_common::doc_mapper::LogDocId;
use tantivy::columnar::Column;
use tantivy::query::{ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError};

use crate::column_cache::u64_column;
use crate::sorted_docs::SortedDocs;

#[derive(Clone, Debug)]
pub struct LogIdsQuery {
    /// Sorted by position, then shard and line.
    ids: Vec<LogDocId>,
}

impl LogIdsQuery {
    pub fn new(mut ids: Vec<LogDocId>) -> LogIdsQuery {
        ids.sort_by_key(|id| (id.position, id.shard, id.line));
        ids.dedup();
        LogIdsQuery { ids }
    }
}

impl Query for LogIdsQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(LogIdsWeight {
            ids: self.ids.clone(),
        }))
    }
}

struct LogIdsWeight {
    ids: Vec<LogDocId>,
}

struct LogIdColumns {
    shard: Column<u64>,
    position: Column<u64>,
    line: Column<u64>,
}

impl LogIdColumns {
    fn of(reader: &SegmentReader) -> tantivy::Result<Option<LogIdColumns>> {
        let columns = (
            u64_column(reader, LOG_SHARD_FIELD_NAME)?,
            u64_column(reader, LOG_POSITION_FIELD_NAME)?,
            u64_column(reader, LOG_LINE_FIELD_NAME)?,
        );
        Ok(match columns {
            (Some(shard), Some(position), Some(line)) => Some(LogIdColumns {
                shard,
                position,
                line,
            }),
            _ => None,
        })
    }

    fn is(&self, doc: DocId, id: &LogDocId) -> bool {
        self.shard.first(doc) == Some(id.shard) && self.line.first(doc) == Some(id.line)
    }
}

/// The log id of document `doc`, if it has one (none: the client gave its own `_id`, or
/// the split is older than log ids).
pub fn log_doc_id(reader: &SegmentReader, doc: DocId) -> tantivy::Result<Option<LogDocId>> {
    let Some(columns) = LogIdColumns::of(reader)? else {
        return Ok(None);
    };
    let id = (
        columns.shard.first(doc),
        columns.position.first(doc),
        columns.line.first(doc),
    );
    Ok(match id {
        (Some(shard), Some(position), Some(line)) => Some(LogDocId {
            shard,
            position,
            line,
        }),
        _ => None,
    })
}

impl LogIdsWeight {
    fn matching_docs(&self, reader: &SegmentReader) -> tantivy::Result<Vec<DocId>> {
        let Some(columns) = LogIdColumns::of(reader)? else {
            return Ok(Vec::new());
        };
        let span = columns.position.min_value()..=columns.position.max_value();
        let mut matching = Vec::new();
        let mut candidates = Vec::new();
        let mut wanted = self
            .ids
            .iter()
            .filter(|id| span.contains(&id.position))
            .peekable();
        while let Some(first) = wanted.next() {
            // Ids of one record share its position: one column scan finds them all.
            let mut same_position = vec![first];
            while let Some(next) = wanted.next_if(|next| next.position == first.position) {
                same_position.push(next);
            }
            candidates.clear();
            columns.position.get_docids_for_value_range(
                first.position..=first.position,
                0..reader.max_doc(),
                &mut candidates,
            );
            // Deleted documents are left to the collector, as with any scorer.
            matching.extend(
                candidates
                    .iter()
                    .copied()
                    .filter(|doc| same_position.iter().any(|id| columns.is(*doc, id))),
            );
        }
        matching.sort_unstable();
        matching.dedup();
        Ok(matching)
    }
}

impl Weight for LogIdsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let matching = self.matching_docs(reader)?;
        if matching.is_empty() {
            return Ok(Box::new(EmptyScorer));
        }
        Ok(Box::new(ConstScorer::new(SortedDocs::new(matching), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document #{doc} does not match"
            )));
        }
        Ok(Explanation::new("LogIdsQuery", scorer.score()))
    }
}

#[cfg(test)]
mod tests {
    use quarry_common::doc_mapper::{shard_hash, DocMapper};
    use quarry_config::{ConfigFormat, IndexConfig};
    use tantivy::collector::DocSetCollector;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{doc, Index, IndexWriter};

    use super::*;

    fn mapper() -> DocMapper {
        let config = IndexConfig::parse(
            b"index_id: ids\ndoc_mapping:\n  field_mappings:\n    - {name: body, type: text}\n",
            ConfigFormat::Yaml,
        )
        .unwrap();
        DocMapper::new(&config)
    }

    fn matches(index: &Index, ids: Vec<LogDocId>) -> usize {
        let searcher = index.reader().unwrap().searcher();
        searcher
            .search(&LogIdsQuery::new(ids), &DocSetCollector)
            .unwrap()
            .len()
    }

    #[test]
    fn finds_documents_by_shard_position_and_line_across_segments() {
        let mapper = mapper();
        let index = Index::create_in_ram(mapper.schema().clone());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let shards = [shard_hash("wal:a"), shard_hash("wal:b")];
        let mut all = Vec::new();
        for segment in 0..3u64 {
            for position in segment * 10 + 1..=segment * 10 + 10 {
                for line in 0..20 {
                    let shard = shards[(position % 2) as usize];
                    let id = LogDocId {
                        shard,
                        position,
                        line,
                    };
                    let mut doc = mapper
                        .doc_from_json_bytes(
                            format!(r#"{{"body": "p{position} l{line}"}}"#).as_bytes(),
                        )
                        .unwrap()
                        .doc;
                    mapper.add_log_id(&mut doc, id);
                    writer.add_document(doc).unwrap();
                    all.push(id);
                }
            }
            writer.commit().unwrap();
        }
        // A client's `_id` keeps the document out of the log ids.
        let mut with_own_id = mapper
            .doc_from_json_bytes(br#"{"_id": "mine", "body": "own"}"#)
            .unwrap()
            .doc;
        mapper.add_log_id(&mut with_own_id, all[0]);
        writer.add_document(with_own_id).unwrap();
        writer.commit().unwrap();
        assert!(index.searchable_segment_ids().unwrap().len() >= 3);

        assert_eq!(matches(&index, vec![all[0]]), 1);
        assert_eq!(matches(&index, all.clone()), all.len());
        let picked: Vec<LogDocId> = all.iter().copied().step_by(37).collect();
        assert_eq!(matches(&index, picked.clone()), picked.len());
        // Position 1 came through shard b.
        let wrong_shard = LogDocId {
            shard: shards[0],
            ..all[0]
        };
        let wrong_line = LogDocId { line: 20, ..all[0] };
        let beyond = LogDocId {
            position: 31,
            ..all[0]
        };
        assert_eq!(matches(&index, vec![wrong_shard, wrong_line, beyond]), 0);

        // Deleted documents are gone.
        writer.delete_term(tantivy::Term::from_field_text(
            mapper.schema().get_field("body").unwrap(),
            "p1",
        ));
        writer.commit().unwrap();
        let first_record: Vec<LogDocId> = all.iter().copied().take(20).collect();
        assert_eq!(matches(&index, first_record), 0);
    }

    #[test]
    fn a_segment_without_the_columns_matches_nothing() {
        // A split written before log ids existed.
        let mut builder = Schema::builder();
        let body = builder.add_text_field("body", TEXT);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.add_document(doc!(body => "old")).unwrap();
        writer.commit().unwrap();
        let id = LogDocId {
            shard: 1,
            position: 1,
            line: 0,
        };
        assert_eq!(matches(&index, vec![id]), 0);
    }
}
