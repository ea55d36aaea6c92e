use quarry_common::doc_mapper::DocMapper;
use serde_json::Value;
use tantivy::{DocAddress, Searcher, TantivyDocument};

/// Reads the documents of the final hits of one split, in the given order. Blocking.
pub(crate) fn fetch_docs(
    searcher: &Searcher,
    doc_mapper: &DocMapper,
    addresses: &[DocAddress],
) -> Result<Vec<Value>, String> {
    addresses
        .iter()
        .map(|address| {
            let doc: TantivyDocument = searcher
                .doc(*address)
                .map_err(|error| format!("fetching document {address:?} failed: {error}"))?;
            Ok(Value::Object(doc_mapper.doc_to_json(&doc)))
        })
        .collect()
}
