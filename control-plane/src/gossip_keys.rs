//! The keys a node publishes about itself in chitchat, and how a peer reads them back into a
//! `ClusterMember`. During a rolling upgrade peers run other versions, so reading is lenient:
//! an unknown service name is skipped, and a missing or unparsable key leaves the node not ready
//! instead of failing the whole view.

use std::collections::BTreeMap;

use quarry_config::Service;

use crate::member::ClusterMember;

pub(crate) const ENABLED_SERVICES: &str = "enabled_services";
pub(crate) const REST_ADDRESS: &str = "rest_address";
pub(crate) const INDEXING_CAPACITY: &str = "indexing_capacity";
pub(crate) const READINESS: &str = "readiness";

const READY: &str = "READY";
const NOT_READY: &str = "NOT_READY";

/// Keys `Cluster::set_self_key` refuses: overwriting one would lie about the node.
pub(crate) const RESERVED: [&str; 4] =
    [ENABLED_SERVICES, REST_ADDRESS, INDEXING_CAPACITY, READINESS];

/// Who a node is in gossip, apart from what chitchat's id already carries.
pub(crate) struct NodeIdentity {
    pub node_id: String,
    pub generation: u64,
    pub gossip_address: String,
}

pub(crate) fn readiness_value(ready: bool) -> &'static str {
    if ready {
        READY
    } else {
        NOT_READY
    }
}

/// The keys a node starts with. Readiness comes last on purpose: chitchat sends a node's keys in
/// the order they were set, so a peer that holds the readiness key holds the others too.
pub(crate) fn initial_key_values(
    rest_address: &str,
    enabled_services: &[Service],
    indexing_capacity: u32,
    ready: bool,
) -> Vec<(String, String)> {
    vec![
        (
            ENABLED_SERVICES.to_string(),
            encode_services(enabled_services),
        ),
        (REST_ADDRESS.to_string(), rest_address.to_string()),
        (INDEXING_CAPACITY.to_string(), indexing_capacity.to_string()),
        (READINESS.to_string(), readiness_value(ready).to_string()),
    ]
}

/// Reads a node's published keys. `alive` is false for dead nodes, which are never ready
/// whatever they last published.
pub(crate) fn member_from_keys(
    identity: &NodeIdentity,
    keys: &BTreeMap<String, String>,
    alive: bool,
) -> ClusterMember {
    let rest_address = keys.get(REST_ADDRESS).filter(|address| !address.is_empty());
    let enabled_services = keys
        .get(ENABLED_SERVICES)
        .map(|value| decode_services(value));
    let indexing_capacity = keys
        .get(INDEXING_CAPACITY)
        .and_then(|value| value.parse::<u32>().ok());
    let says_ready = keys.get(READINESS).map(String::as_str) == Some(READY);
    let complete =
        rest_address.is_some() && enabled_services.is_some() && indexing_capacity.is_some();
    ClusterMember {
        node_id: identity.node_id.clone(),
        generation: identity.generation,
        rest_address: rest_address.cloned().unwrap_or_default(),
        gossip_address: identity.gossip_address.clone(),
        enabled_services: enabled_services.unwrap_or_default(),
        ready: alive && says_ready && complete,
        indexing_capacity: indexing_capacity.unwrap_or(0),
    }
}

fn service_name(service: Service) -> &'static str {
    // The same names as the configuration file's (serde snake_case), so operators read one
    // vocabulary in configs, gossip and `/api/v1/cluster`.
    match service {
        Service::Indexer => "indexer",
        Service::Searcher => "searcher",
        Service::ControlPlane => "control_plane",
        Service::Metastore => "metastore",
        Service::Janitor => "janitor",
    }
}

pub(crate) fn encode_services(services: &[Service]) -> String {
    services
        .iter()
        .map(|service| service_name(*service))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn decode_services(value: &str) -> Vec<Service> {
    value
        .split(',')
        .filter_map(|name| {
            Service::ALL
                .into_iter()
                .find(|service| service_name(*service) == name.trim())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> NodeIdentity {
        NodeIdentity {
            node_id: "node-b".to_string(),
            generation: 7,
            gossip_address: "10.0.0.2:7280".to_string(),
        }
    }

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn services_round_trip_in_order() {
        for services in [
            Vec::new(),
            vec![Service::Searcher],
            Service::ALL.to_vec(),
            vec![Service::Janitor, Service::Indexer],
        ] {
            assert_eq!(decode_services(&encode_services(&services)), services);
        }
        assert_eq!(
            encode_services(&Service::ALL),
            "indexer,searcher,control_plane,metastore,janitor"
        );
    }

    #[test]
    fn unknown_services_from_newer_peers_are_skipped() {
        assert_eq!(
            decode_services("searcher,tiering, indexer,"),
            vec![Service::Searcher, Service::Indexer]
        );
    }

    #[test]
    fn a_published_node_reads_back_as_itself() {
        let published: BTreeMap<String, String> =
            initial_key_values("10.0.0.2:7380", &[Service::Indexer], 8, true)
                .into_iter()
                .collect();
        assert_eq!(
            member_from_keys(&identity(), &published, true),
            ClusterMember {
                node_id: "node-b".to_string(),
                generation: 7,
                rest_address: "10.0.0.2:7380".to_string(),
                gossip_address: "10.0.0.2:7280".to_string(),
                enabled_services: vec![Service::Indexer],
                ready: true,
                indexing_capacity: 8,
            }
        );
        assert!(!member_from_keys(&identity(), &published, false).ready);
    }

    #[test]
    fn readiness_needs_the_whole_state() {
        let full = [
            (ENABLED_SERVICES, "searcher"),
            (REST_ADDRESS, "10.0.0.2:7380"),
            (INDEXING_CAPACITY, "4"),
            (READINESS, READY),
        ];
        assert!(member_from_keys(&identity(), &keys(&full), true).ready);
        // Each key missing in turn, as when a delta was cut by the datagram size.
        for missing in 0..full.len() {
            let mut partial = full.to_vec();
            partial.remove(missing);
            let member = member_from_keys(&identity(), &keys(&partial), true);
            assert!(!member.ready, "ready without {}", full[missing].0);
        }
        for (key, bad_value) in [
            (INDEXING_CAPACITY, "-1"),
            (INDEXING_CAPACITY, "many"),
            (REST_ADDRESS, ""),
            (READINESS, NOT_READY),
            (READINESS, "ready"),
        ] {
            let mut broken = keys(&full);
            broken.insert(key.to_string(), bad_value.to_string());
            let member = member_from_keys(&identity(), &broken, true);
            assert!(!member.ready, "ready with {key}={bad_value:?}");
        }
        let nothing_yet = member_from_keys(&identity(), &BTreeMap::new(), true);
        assert_eq!(nothing_yet.rest_address, "");
        assert!(nothing_yet.enabled_services.is_empty());
        assert_eq!(nothing_yet.indexing_capacity, 0);
    }
}
