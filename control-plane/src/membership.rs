//! Which nodes count as live and which as dead, from what chitchat reports. chitchat tracks
//! (node id, generation, gossip address) triples, and after a restart it sees the old and the new
//! generation of a node live at once until its failure detector gives up on the old one. The
//! rest of Quarry thinks in node ids, so here only the newest generation of a node id is live
//! and every older one is dead. A pure function of its inputs, tested as a table.

use std::collections::BTreeMap;

use crate::gossip_keys::{member_from_keys, NodeIdentity};
use crate::member::ClusterMember;

/// A node as chitchat holds it: its identity and the keys that have arrived so far.
pub(crate) struct GossipedNode {
    pub identity: NodeIdentity,
    pub keys: BTreeMap<String, String>,
}

pub(crate) struct LiveNode {
    pub member: ClusterMember,
    /// Kept for `Cluster::member_key`.
    pub keys: BTreeMap<String, String>,
}

#[derive(Default)]
pub(crate) struct MembershipView {
    /// Sorted by node id, one per node id.
    pub live: Vec<LiveNode>,
    /// Sorted by node id, generation, gossip address.
    pub dead: Vec<ClusterMember>,
    /// Peers gossiping under this node's own id with a generation at least as new: two
    /// processes configured with one node id.
    pub impostors: Vec<ClusterMember>,
}

impl MembershipView {
    pub fn live_members(&self) -> Vec<ClusterMember> {
        self.live.iter().map(|node| node.member.clone()).collect()
    }
}

/// `self_node` is live whatever else claims its id: this process is running.
pub(crate) fn build_view(
    self_node: &GossipedNode,
    live_peers: &[GossipedNode],
    dead_peers: &[GossipedNode],
) -> MembershipView {
    let self_id = self_node.identity.node_id.as_str();
    // The newest incarnation known of each node id, dead or alive: a node whose newest
    // generation died is dead, even if the detector has not yet given up on an older one.
    let mut newest: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for node in live_peers.iter().chain(dead_peers) {
        let incarnation = (
            node.identity.generation,
            node.identity.gossip_address.as_str(),
        );
        newest
            .entry(node.identity.node_id.as_str())
            .and_modify(|known| *known = (*known).max(incarnation))
            .or_insert(incarnation);
    }

    let mut view = MembershipView::default();
    view.live.push(LiveNode {
        member: member_from_keys(&self_node.identity, &self_node.keys, true),
        keys: self_node.keys.clone(),
    });
    for node in live_peers {
        let identity = &node.identity;
        let incarnation = (identity.generation, identity.gossip_address.as_str());
        if identity.node_id == self_id {
            let member = member_from_keys(identity, &node.keys, false);
            if identity.generation >= self_node.identity.generation {
                view.impostors.push(member.clone());
            }
            view.dead.push(member);
        } else if newest.get(identity.node_id.as_str()) == Some(&incarnation) {
            view.live.push(LiveNode {
                member: member_from_keys(identity, &node.keys, true),
                keys: node.keys.clone(),
            });
        } else {
            view.dead
                .push(member_from_keys(identity, &node.keys, false));
        }
    }
    for node in dead_peers {
        view.dead
            .push(member_from_keys(&node.identity, &node.keys, false));
    }
    view.live
        .sort_by(|left, right| left.member.node_id.cmp(&right.member.node_id));
    view.dead.sort_by(|left, right| {
        (&left.node_id, left.generation, &left.gossip_address).cmp(&(
            &right.node_id,
            right.generation,
            &right.gossip_address,
        ))
    });
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip_keys::initial_key_values;

    fn node(node_id: &str, generation: u64, port: u16) -> GossipedNode {
        GossipedNode {
            identity: NodeIdentity {
                node_id: node_id.to_string(),
                generation,
                gossip_address: format!("127.0.0.1:{port}"),
            },
            keys: initial_key_values(&format!("127.0.0.1:{}", port + 100), &[], 1, true)
                .into_iter()
                .collect(),
        }
    }

    fn ids(members: &[ClusterMember]) -> Vec<(String, u64)> {
        members
            .iter()
            .map(|member| (member.node_id.clone(), member.generation))
            .collect()
    }

    fn pairs(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
        expected
            .iter()
            .map(|(node_id, generation)| (node_id.to_string(), *generation))
            .collect()
    }

    #[test]
    fn live_and_dead_by_node_id_and_generation() {
        struct Case {
            name: &'static str,
            live: Vec<GossipedNode>,
            dead: Vec<GossipedNode>,
            expected_live: &'static [(&'static str, u64)],
            expected_dead: &'static [(&'static str, u64)],
        }
        let cases = [
            Case {
                name: "alone",
                live: vec![],
                dead: vec![],
                expected_live: &[("b", 5)],
                expected_dead: &[],
            },
            Case {
                name: "peers are sorted by node id",
                live: vec![node("c", 1, 3), node("a", 1, 1)],
                dead: vec![node("d", 1, 4)],
                expected_live: &[("a", 1), ("b", 5), ("c", 1)],
                expected_dead: &[("d", 1)],
            },
            Case {
                name: "a restart seen live twice: the newer generation wins",
                live: vec![node("a", 1, 1), node("a", 2, 1)],
                dead: vec![],
                expected_live: &[("a", 2), ("b", 5)],
                expected_dead: &[("a", 1)],
            },
            Case {
                name: "the newest generation died: the older one is not revived",
                live: vec![node("a", 1, 1)],
                dead: vec![node("a", 2, 1)],
                expected_live: &[("b", 5)],
                expected_dead: &[("a", 1), ("a", 2)],
            },
            Case {
                name: "old generations already dead stay listed beside the live one",
                live: vec![node("a", 3, 1)],
                dead: vec![node("a", 2, 1), node("a", 1, 1)],
                expected_live: &[("a", 3), ("b", 5)],
                expected_dead: &[("a", 1), ("a", 2)],
            },
            Case {
                name: "one node id, one generation, two addresses: one is kept",
                live: vec![node("a", 1, 2), node("a", 1, 1)],
                dead: vec![],
                expected_live: &[("a", 1), ("b", 5)],
                expected_dead: &[("a", 1)],
            },
            Case {
                name: "this node's previous generation is dead",
                live: vec![node("b", 4, 9)],
                dead: vec![node("b", 3, 9)],
                expected_live: &[("b", 5)],
                expected_dead: &[("b", 3), ("b", 4)],
            },
        ];
        for case in cases {
            let view = build_view(&node("b", 5, 9), &case.live, &case.dead);
            assert_eq!(
                ids(&view.live_members()),
                pairs(case.expected_live),
                "{}",
                case.name
            );
            assert_eq!(ids(&view.dead), pairs(case.expected_dead), "{}", case.name);
            assert!(
                view.dead.iter().all(|member| !member.ready),
                "{}",
                case.name
            );
            assert!(view.impostors.is_empty(), "{}", case.name);
        }
    }

    #[test]
    fn the_kept_address_is_the_same_whatever_the_order() {
        let forward = build_view(&node("b", 5, 9), &[node("a", 1, 1), node("a", 1, 2)], &[]);
        let backward = build_view(&node("b", 5, 9), &[node("a", 1, 2), node("a", 1, 1)], &[]);
        assert_eq!(forward.live_members(), backward.live_members());
        assert_eq!(forward.live_members()[0].gossip_address, "127.0.0.1:2");
    }

    #[test]
    fn a_newer_process_with_this_node_id_does_not_replace_this_one() {
        let view = build_view(&node("b", 5, 9), &[node("b", 6, 8)], &[]);
        assert_eq!(ids(&view.live_members()), pairs(&[("b", 5)]));
        assert_eq!(view.live[0].member.gossip_address, "127.0.0.1:9");
        assert_eq!(ids(&view.dead), pairs(&[("b", 6)]));
        assert_eq!(ids(&view.impostors), pairs(&[("b", 6)]));
    }

    #[test]
    fn a_live_peer_without_its_keys_is_live_but_not_ready() {
        let mut partial = node("a", 1, 1);
        partial.keys.clear();
        let view = build_view(&node("b", 5, 9), &[partial], &[]);
        let a = &view.live_members()[0];
        assert_eq!((a.node_id.as_str(), a.ready), ("a", false));
        assert!(view.live_members()[1].ready);
    }
}
