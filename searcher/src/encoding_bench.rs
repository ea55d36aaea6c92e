//! For `cargo bench -p quarry-searcher --bench internal_encoding` only: what the leaf
//! response costs on the wire in JSON and in postcard, the two candidates for
//! `/internal/v1/leaf_search`, on a response of the shape a root merges most.

use std::time::{Duration, Instant};

use tantivy::aggregation::agg_req::Aggregations;
use tantivy::collector::Count;
use tantivy::query::AllQuery;
use tantivy::schema::{Schema, FAST, STRING};
use tantivy::{doc, DocAddress, Index};

use crate::aggregations::tantivy_collector;
use crate::leaf::{LeafResult, PartialHit};
use crate::protocol::LeafSearchResponse;
use crate::sort::SortKey;

/// One encoding's figures: bytes on the wire and the time of an encode plus a decode.
pub struct EncodingFigures {
    pub bytes: usize,
    pub round_trip: Duration,
}

pub struct EncodingReport {
    pub json_hits: EncodingFigures,
    pub postcard_hits: EncodingFigures,
    /// JSON cannot carry tantivy's intermediate aggregation results (maps keyed by enums):
    /// what serde_json says when asked to.
    pub json_aggregations_error: String,
    pub postcard_aggregations: EncodingFigures,
}

fn time_round_trips<T>(
    rounds: u32,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> T,
    value: &T,
) -> EncodingFigures {
    let bytes = encode(value).len();
    let started = Instant::now();
    for _ in 0..rounds {
        let encoded = encode(value);
        std::hint::black_box(decode(&encoded));
    }
    EncodingFigures {
        bytes,
        round_trip: started.elapsed() / rounds,
    }
}

/// A response for `splits` splits of `hits_per_split` hits each (sorted by timestamp), and
/// one for a terms aggregation over `terms` distinct values.
pub fn measure(splits: usize, hits_per_split: usize, terms: usize, rounds: u32) -> EncodingReport {
    let hits_response = LeafSearchResponse {
        results: (0..splits)
            .map(|split_ord| {
                Ok(LeafResult {
                    num_hits: 123_456,
                    hits: (0..hits_per_split)
                        .map(|doc| PartialHit {
                            split_ord,
                            address: DocAddress::new(doc as u32 % 2, doc as u32 * 7),
                            sort_key: Some(SortKey::Numeric(
                                1_767_225_600_000_000_000 + doc as u64,
                            )),
                        })
                        .collect(),
                    aggregations: None,
                })
            })
            .collect(),
    };
    let json_encode =
        |response: &LeafSearchResponse| serde_json::to_vec(response).unwrap_or_default();
    let json_decode = |bytes: &[u8]| -> LeafSearchResponse {
        serde_json::from_slice(bytes).unwrap_or(LeafSearchResponse {
            results: Vec::new(),
        })
    };
    let postcard_encode =
        |response: &LeafSearchResponse| postcard::to_allocvec(response).unwrap_or_default();
    let postcard_decode = |bytes: &[u8]| -> LeafSearchResponse {
        postcard::from_bytes(bytes).unwrap_or(LeafSearchResponse {
            results: Vec::new(),
        })
    };

    let aggregations = terms_aggregation(terms);
    let aggs_response = LeafSearchResponse {
        results: vec![Ok(LeafResult {
            num_hits: terms as u64,
            hits: Vec::new(),
            aggregations,
        })],
    };
    let json_aggregations_error = match serde_json::to_vec(&aggs_response) {
        Ok(_) => "none: JSON encoded it".to_string(),
        Err(error) => error.to_string(),
    };
    EncodingReport {
        json_hits: time_round_trips(rounds, json_encode, json_decode, &hits_response),
        postcard_hits: time_round_trips(rounds, postcard_encode, postcard_decode, &hits_response),
        json_aggregations_error,
        postcard_aggregations: time_round_trips(
            rounds,
            postcard_encode,
            postcard_decode,
            &aggs_response,
        ),
    }
}

/// The intermediate result of `terms` over an in-memory index with `terms` values.
fn terms_aggregation(
    terms: usize,
) -> Option<tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults> {
    let mut schema = Schema::builder();
    let service = schema.add_text_field("service", STRING | FAST);
    let index = Index::create_in_ram(schema.build());
    let mut writer = index.writer_with_num_threads(1, 15_000_000).ok()?;
    for n in 0..terms * 3 {
        writer
            .add_document(doc!(service => format!("service-{}", n % terms)))
            .ok()?;
    }
    writer.commit().ok()?;
    let aggs: Aggregations = serde_json::from_value(serde_json::json!({
        "by_service": {"terms": {"field": "service", "size": terms}}
    }))
    .ok()?;
    let searcher = index.reader().ok()?.searcher();
    let (_, aggregations) = searcher
        .search(&AllQuery, &(Count, tantivy_collector(&aggs)))
        .ok()?;
    Some(aggregations)
}
