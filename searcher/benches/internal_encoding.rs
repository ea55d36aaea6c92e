//! Which encoding `/internal/v1/leaf_search` answers in: JSON or postcard, on leaf
//! responses of the shapes a root merges.
//!
//!   cargo bench -p quarry-searcher --bench internal_encoding

fn main() {
    for (splits, hits) in [(1, 20), (10, 20), (10, 100)] {
        let report = quarry_searcher::encoding_bench::measure(splits, hits, 1_000, 2_000);
        println!(
            "{splits:>2} splits x {hits:>3} hits: JSON {:>6} bytes, {:>8.1?} per encode+decode; postcard {:>6} bytes, {:>8.1?} ({:.2}x the bytes, {:.2}x the time)",
            report.json_hits.bytes,
            report.json_hits.round_trip,
            report.postcard_hits.bytes,
            report.postcard_hits.round_trip,
            report.postcard_hits.bytes as f64 / report.json_hits.bytes as f64,
            report.postcard_hits.round_trip.as_secs_f64() / report.json_hits.round_trip.as_secs_f64(),
        );
    }
    let report = quarry_searcher::encoding_bench::measure(1, 0, 1_000, 2_000);
    println!(
        "terms over 1000 values: postcard {} bytes, {:.1?} per encode+decode; JSON cannot carry it: {}",
        report.postcard_aggregations.bytes,
        report.postcard_aggregations.round_trip,
        report.json_aggregations_error
    );
}
