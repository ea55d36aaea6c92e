//! The shared secret nodes of a cluster prove to each other on `/internal/v1` (node config
//! `cluster_secret`). Every node-to-node HTTP client sends it; the server refuses internal
//! requests without it. Gossip is sealed with a key derived from it (`quarry-control-plane`'s
//! `gossip_seal`).

/// The header that carries the secret.
pub const CLUSTER_SECRET_HEADER: &str = "x-quarry-cluster-secret";

/// Default headers for a node-to-node HTTP client: the secret, when there is one.
pub fn client_headers(secret: Option<&str>) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) =
        secret.and_then(|secret| reqwest::header::HeaderValue::from_str(secret).ok())
    {
        headers.insert(CLUSTER_SECRET_HEADER, value);
    }
    headers
}

/// Compares in time that depends on the lengths only, so that response times do not tell
/// an attacker how much of a guess was right.
pub fn secrets_match(expected: &str, given: &[u8]) -> bool {
    let expected = expected.as_bytes();
    if expected.len() != given.len() {
        return false;
    }
    expected
        .iter()
        .zip(given)
        .fold(0u8, |difference, (left, right)| difference | (left ^ right))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_matches() {
        assert!(secrets_match("s3cret", b"s3cret"));
        assert!(!secrets_match("s3cret", b"s3creT"));
        assert!(!secrets_match("s3cret", b"s3cre"));
        assert!(!secrets_match("s3cret", b""));
        assert_eq!(
            client_headers(Some("s3cret"))[CLUSTER_SECRET_HEADER],
            "s3cret"
        );
        assert!(client_headers(None).is_empty());
    }
}
