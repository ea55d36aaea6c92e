use std::sync::Arc;

use quarry_common::doc_mapper::DocMapper;
use quarry_common::split::source_store::SourceStoreReader;
use quarry_query::log_ids_query::log_doc_id;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tantivy::query::Query;
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

/// A hit's document, and its highlighted fragments when snippets were asked for.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct FetchedDoc {
    /// The document: the text it was indexed from when the split keeps it, so that
    /// `_source` comes back byte for byte; otherwise rebuilt from its stored fields.
    pub doc: Box<RawValue>,
    /// The document's stable `_id`: the one the client gave, or its log id. `None` only
    /// for documents of splits written before log ids.
    pub external_id: Option<String>,
    pub snippets: Option<Value>,
}

/// What the fetch phase needs to highlight: the query and the fields to cut fragments from.
pub(crate) struct SnippetRequest<'a> {
    pub query: &'a dyn Query,
    pub fields: &'a [(String, Field)],
    pub options: Option<&'a crate::request::HighlightOptions>,
}

/// Reads the documents of the final hits of one split, in the given order. `sources` are
/// the split's source stores, per segment. Blocking.
pub(crate) fn fetch_docs(
    searcher: &Searcher,
    sources: &[Option<Arc<SourceStoreReader>>],
    doc_mapper: &DocMapper,
    addresses: &[DocAddress],
    snippets: Option<SnippetRequest<'_>>,
) -> Result<Vec<FetchedDoc>, String> {
    let generators = match &snippets {
        Some(request) => request
            .fields
            .iter()
            .map(|(name, field)| {
                SnippetGenerator::create(searcher, request.query, *field)
                    .map(|mut generator| {
                        if let Some(options) = request.options {
                            generator.set_max_num_chars(options.max_chars);
                        }
                        (name.clone(), *field, generator)
                    })
                    .map_err(|error| format!("snippets of `{name}`: {error}"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mut stored_sources = read_sources(sources, addresses)?;
    addresses
        .iter()
        .zip(stored_sources.iter_mut())
        .map(|(address, source)| {
            let mut doc: TantivyDocument = searcher
                .doc(*address)
                .map_err(|error| format!("fetching document {address:?} failed: {error}"))?;
            if let (Some(field), Some(source)) = (doc_mapper.source_field(), source.take()) {
                doc.add_bytes(field, &source);
            }
            let (raw, json) = match doc_mapper.stored_source(&doc).and_then(json_object_text) {
                // Parsed only for what highlighting cuts from it.
                Some(raw) => (
                    raw,
                    snippets.is_some().then(|| doc_mapper.doc_to_json(&doc)),
                ),
                None => {
                    let json = doc_mapper.doc_to_json(&doc);
                    let raw = serde_json::value::to_raw_value(&json)
                        .map_err(|error| format!("writing document {address:?}: {error}"))?;
                    (raw, Some(json))
                }
            };
            let json = json.unwrap_or_default();
            let snippets = snippets.as_ref().map(|_| {
                let mut by_field = Map::new();
                for (name, field, generator) in &generators {
                    // Fields live in the source, unless the split stored them (older splits).
                    let mut snippet = if doc.get_first(*field).is_some() {
                        generator.snippet_from_doc(&doc)
                    } else {
                        let mut texts = Vec::new();
                        texts_at_path(&json, name, &mut texts);
                        generator.snippet(&texts.join(" "))
                    };
                    if let Some(options) = snippets.as_ref().and_then(|request| request.options) {
                        snippet.set_snippet_prefix_postfix(&options.pre_tag, &options.post_tag);
                    }
                    let html = snippet.to_html();
                    let fragments = if html.is_empty() {
                        Vec::new()
                    } else {
                        vec![Value::String(html)]
                    };
                    by_field.insert(name.clone(), Value::Array(fragments));
                }
                Value::Object(by_field)
            });
            let external_id = match doc_mapper.doc_id(&doc) {
                Some(given) => Some(given),
                None => log_doc_id(searcher.segment_reader(address.segment_ord), address.doc_id)
                    .map_err(|error| format!("reading the id of document {address:?}: {error}"))?
                    .map(|id| id.encode()),
            };
            Ok(FetchedDoc {
                doc: raw,
                external_id,
                snippets,
            })
        })
        .collect()
}

/// The source as JSON text, when it is one JSON object (what ingest accepts; anything else
/// is rebuilt from the fields).
fn json_object_text(bytes: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    raw.get().starts_with('{').then(|| raw.to_owned())
}

/// The sources of `addresses` from their segments' source stores, a block read per block.
fn read_sources(
    sources: &[Option<Arc<SourceStoreReader>>],
    addresses: &[DocAddress],
) -> Result<Vec<Option<Vec<u8>>>, String> {
    let mut out: Vec<Option<Vec<u8>>> = vec![None; addresses.len()];
    for (segment_ord, store) in sources.iter().enumerate() {
        let Some(store) = store else {
            continue;
        };
        let (slots, docs): (Vec<usize>, Vec<DocId>) = addresses
            .iter()
            .enumerate()
            .filter(|(_, address)| address.segment_ord as usize == segment_ord)
            .map(|(slot, address)| (slot, address.doc_id))
            .unzip();
        if docs.is_empty() {
            continue;
        }
        let read = store
            .sources(&docs)
            .map_err(|error| format!("reading sources of segment {segment_ord}: {error}"))?;
        for (slot, source) in slots.into_iter().zip(read) {
            out[slot] = source;
        }
    }
    Ok(out)
}

/// The strings at `path` in a document, where a dot may be a nesting or part of a key
/// (`attributes.http.method` is `{"attributes": {"http.method": …}}` too).
fn texts_at_path<'a>(object: &'a Map<String, Value>, path: &str, out: &mut Vec<&'a str>) {
    let mut split_points: Vec<usize> = path.match_indices('.').map(|(at, _)| at).collect();
    split_points.push(path.len());
    for at in split_points {
        let Some(value) = object.get(&path[..at]) else {
            continue;
        };
        let rest = path.get(at + 1..).unwrap_or("");
        texts_in(value, rest, out);
    }
}

fn texts_in<'a>(value: &'a Value, path: &str, out: &mut Vec<&'a str>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| texts_in(item, path, out)),
        Value::Object(object) if !path.is_empty() => texts_at_path(object, path, out),
        Value::String(text) if path.is_empty() => out.push(text),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_found_through_nesting_and_dotted_keys() {
        let doc = serde_json::json!({
            "body": "plain",
            "attributes": {"http.method": "GET", "nested": {"deep": ["a", "b"]}},
            "list": [{"x": "one"}, {"x": "two"}, {"x": 3}],
        });
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        let texts = |path: &str| {
            let mut out = Vec::new();
            texts_at_path(&doc, path, &mut out);
            out
        };
        assert_eq!(texts("body"), ["plain"]);
        assert_eq!(texts("attributes.http.method"), ["GET"]);
        assert_eq!(texts("attributes.nested.deep"), ["a", "b"]);
        assert_eq!(texts("list.x"), ["one", "two"]);
        assert!(texts("missing").is_empty());
        assert!(texts("attributes").is_empty());
    }
}
