//! Which searcher node searches which split: rendezvous (highest random weight) hashing on
//! the split id. Every root computes the same order from the same membership without
//! talking to the others, each split keeps landing on the node whose caches hold it, and a
//! node joining or leaving moves only the splits it wins or held.

use serde::{Deserialize, Serialize};

/// A node that can run leaf searches, as the root sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearcherNode {
    pub node_id: String,
    /// `host:port` of its REST server, which also serves `/internal/v1`.
    pub rest_address: String,
}

/// The nodes in the order they should try `split_id`: the first is its home, the next ones
/// are where its leaf search is retried when the earlier ones fail.
pub fn rendezvous_order<'a>(split_id: &str, nodes: &'a [SearcherNode]) -> Vec<&'a SearcherNode> {
    let mut weighted: Vec<(u64, &SearcherNode)> = nodes
        .iter()
        .map(|node| (weight(&node.node_id, split_id), node))
        .collect();
    // Ties (a hash collision) fall back to the node id, so every root agrees.
    weighted.sort_by(|left, right| {
        right
            .0
            .cmp(&left.0)
            .then_with(|| left.1.node_id.cmp(&right.1.node_id))
    });
    weighted.into_iter().map(|(_, node)| node).collect()
}

/// FNV-1a over `node_id ‖ 0xff ‖ key`, then a splitmix64 finaliser: stable across builds
/// and platforms (unlike `DefaultHasher`), which roots of different versions rely on
/// during a rolling upgrade.
fn weight(node_id: &str, key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in node_id
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(key.as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[&str]) -> Vec<SearcherNode> {
        ids.iter()
            .map(|id| SearcherNode {
                node_id: id.to_string(),
                rest_address: format!("{id}:7280"),
            })
            .collect()
    }

    fn order(split_id: &str, nodes: &[SearcherNode]) -> Vec<String> {
        rendezvous_order(split_id, nodes)
            .into_iter()
            .map(|node| node.node_id.clone())
            .collect()
    }

    #[test]
    fn pins_the_order() {
        let three = nodes(&["node-1", "node-2", "node-3"]);
        // Pinned: a change here moves every split's cache to another node.
        assert_eq!(
            order("01JABCDEF0000000000000000A", &three),
            ["node-2", "node-3", "node-1"]
        );
        assert_eq!(
            order("01JABCDEF0000000000000000B", &three),
            ["node-3", "node-1", "node-2"]
        );
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_splits() {
        let three = nodes(&["node-1", "node-2", "node-3"]);
        let two = nodes(&["node-1", "node-3"]);
        let mut moved = 0;
        for ordinal in 0..1000 {
            let split_id = format!("split-{ordinal}");
            let before = order(&split_id, &three);
            let after = order(&split_id, &two);
            if before[0] == "node-2" {
                moved += 1;
                // The split goes to the node that was next in line: its first retry target.
                assert_eq!(after[0], before[1]);
            } else {
                assert_eq!(after[0], before[0], "{split_id} moved without cause");
            }
        }
        // About a third of the splits lived on node-2.
        assert!((250..420).contains(&moved), "{moved}");
    }

    #[test]
    fn a_node_joining_takes_a_fair_share() {
        let two = nodes(&["node-1", "node-2"]);
        let three = nodes(&["node-1", "node-2", "node-3"]);
        let taken = (0..1000)
            .filter(|ordinal| {
                let split_id = format!("split-{ordinal}");
                let after = order(&split_id, &three);
                let before = order(&split_id, &two);
                assert!(after[0] == "node-3" || after[0] == before[0]);
                after[0] == "node-3"
            })
            .count();
        assert!((250..420).contains(&taken), "{taken}");
    }
}
