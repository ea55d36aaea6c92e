use quarry_common::doc_mapper::DocMapper;
use quarry_query::log_ids_query::log_doc_id;
use serde_json::{Map, Value};
use tantivy::query::Query;
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Searcher, TantivyDocument};

/// A hit's document, and its highlighted fragments when snippets were asked for.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct FetchedDoc {
    pub doc: Value,
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

/// Reads the documents of the final hits of one split, in the given order. Blocking.
pub(crate) fn fetch_docs(
    searcher: &Searcher,
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
                        (name.clone(), generator)
                    })
                    .map_err(|error| format!("snippets of `{name}`: {error}"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    addresses
        .iter()
        .map(|address| {
            let doc: TantivyDocument = searcher
                .doc(*address)
                .map_err(|error| format!("fetching document {address:?} failed: {error}"))?;
            let snippets = snippets.as_ref().map(|_| {
                let mut by_field = Map::new();
                for (name, generator) in &generators {
                    let mut snippet = generator.snippet_from_doc(&doc);
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
                doc: Value::Object(doc_mapper.doc_to_json(&doc)),
                external_id,
                snippets,
            })
        })
        .collect()
}
