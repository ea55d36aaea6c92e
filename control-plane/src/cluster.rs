//! The node's handle on the cluster. chitchat keeps its state behind an async mutex that its
//! gossip loop holds while it works; REST handlers and the search placer read membership on every
//! request and must not queue behind gossip, so a background task copies chitchat's state into a
//! view after every membership change and every gossip round, and readers take a std mutex held
//! for the time of a clone. Writes to this node's own keys update the view at once and reach
//! chitchat through the same task.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chitchat::{
    spawn_chitchat, Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, ProtocolVersion,
};
use quarry_config::{NodeConfig, Service};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info, warn};

use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::gossip_keys::{self, initial_key_values, member_from_keys, NodeIdentity};
use crate::gossip_seal::GossipKey;
use crate::member::{ClusterMember, ClusterSnapshot};
use crate::membership::{build_view, GossipedNode, MembershipView};
use crate::seeds::{usable_seeds, OwnGossipAddrs};
use crate::transport::{bind_gossip_socket, BoundUdpTransport};

/// chitchat needs two heartbeats before it calls a peer live, and a seed may answer a round or
/// two late; ten rounds without any peer means nobody is there.
const ALONE_AFTER_GOSSIP_ROUNDS: u32 = 10;

/// Rounds a leaving node keeps gossiping after it said it is not ready, so that peers stop
/// sending it requests before its silence makes it dead.
const LEAVE_GOSSIP_ROUNDS: u32 = 2;

#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    cluster_id: String,
    shared: Arc<Shared>,
    /// Gossip datagrams dropped because they did not open with the gossip secret's key.
    rejected_gossip_datagrams: Arc<AtomicU64>,
    /// None for a node that does not gossip.
    gossip: Option<Gossip>,
}

struct Gossip {
    self_keys_tx: mpsc::UnboundedSender<SelfKey>,
    gossip_interval: Duration,
    /// Taken by the first `shutdown`. Dropping it (with the last `Cluster`) also stops gossip:
    /// chitchat's loop ends when its handle's command channel closes.
    running: Mutex<Option<Running>>,
}

struct Running {
    chitchat: ChitchatHandle,
    refresher: JoinHandle<()>,
}

/// A key this node publishes, on its way from the caller to chitchat.
struct SelfKey {
    key: String,
    value: String,
}

/// What the refresher task and the `Cluster` handles share.
struct Shared {
    state: Mutex<State>,
    /// Serialises publications so that subscribers never see an older view after a newer one.
    last_published: Mutex<u64>,
    members_tx: watch::Sender<Vec<ClusterMember>>,
    /// Set once the "alone" warning was logged; read by tests.
    warned_alone: AtomicBool,
}

struct State {
    self_node: GossipedNode,
    live_peers: Vec<GossipedNode>,
    dead_peers: Vec<GossipedNode>,
    view: MembershipView,
    version: u64,
}

impl Shared {
    fn new(self_node: GossipedNode) -> Shared {
        let view = build_view(&self_node, &[], &[]);
        let (members_tx, _) = watch::channel(view.live_members());
        Shared {
            state: Mutex::new(State {
                self_node,
                live_peers: Vec::new(),
                dead_peers: Vec::new(),
                view,
                version: 0,
            }),
            last_published: Mutex::new(0),
            members_tx,
            warned_alone: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is replaced whole under the lock, so a panic elsewhere cannot leave it half
        // written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change`, rebuilds the view and tells subscribers if the live members changed.
    /// Returns the peers claiming this node's id.
    fn update(&self, change: impl FnOnce(&mut State)) -> Vec<ClusterMember> {
        let (version, live, impostors) = {
            let mut state = self.state();
            change(&mut state);
            state.view = build_view(&state.self_node, &state.live_peers, &state.dead_peers);
            state.version += 1;
            (
                state.version,
                state.view.live_members(),
                state.view.impostors.clone(),
            )
        };
        // Sent outside the state lock: a subscriber holding `borrow()` while reading a snapshot
        // would otherwise deadlock with this send.
        let mut last_published = self
            .last_published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if version > *last_published {
            *last_published = version;
            self.members_tx.send_if_modified(|current| {
                let changed = *current != live;
                if changed {
                    *current = live;
                }
                changed
            });
        }
        impostors
    }
}

impl Cluster {
    /// Binds the gossip socket and starts gossiping with the peer seeds. The node starts not
    /// ready: call `set_ready(true)` once it serves requests.
    pub async fn join(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        config.validate()?;
        let key = config
            .gossip_secret
            .as_deref()
            .map(|secret| GossipKey::derive(secret, &config.cluster_id))
            .transpose()
            .map_err(|error| ClusterError::GossipStart {
                reason: error.to_string(),
            })?;
        let sealed = key.is_some();
        let rejected_gossip_datagrams = Arc::new(AtomicU64::new(0));
        let socket = bind_gossip_socket(
            config.gossip_listen_addr,
            key,
            rejected_gossip_datagrams.clone(),
        )
        .await?;
        let bound = socket
            .local_addr()
            .map_err(|error| ClusterError::GossipStart {
                reason: format!("{error:#}"),
            })?;
        let mut advertised = config.gossip_advertise_addr;
        if advertised.port() == 0 {
            advertised.set_port(bound.port());
        }
        if advertised.ip().is_unspecified() {
            warn!(
                gossip_advertise_addr = %advertised,
                "the gossip advertise address is unspecified: peers cannot reach this node; set \
                 advertise_address"
            );
        }
        let seeds = usable_seeds(&config.peer_seeds, OwnGossipAddrs { advertised, bound }).await;

        let chitchat_id = ChitchatId::new(config.node_id.clone(), config.generation, advertised);
        let self_keys = initial_key_values(
            &config.rest_advertise_addr,
            &config.enabled_services,
            config.indexing_capacity,
            false,
        );
        let chitchat_config = ChitchatConfig {
            chitchat_id: chitchat_id.clone(),
            cluster_id: config.cluster_id.clone(),
            gossip_interval: config.gossip_interval,
            listen_addr: bound,
            seed_nodes: seeds.clone(),
            failure_detector_config: config.failure_detector_config(),
            // We never delete keys, only overwrite them, so tombstones are rare; keep them as
            // long as dead nodes so that a peer back from a partition still learns deletions.
            marked_for_deletion_grace_period: config.dead_node_grace_period,
            catchup_callback: None,
            // Nodes missing keys stay live but not ready (see `gossip_keys`), so that
            // `/api/v1/cluster` shows them.
            extra_liveness_predicate: None,
            // Every Quarry node runs chitchat 0.13, which reads both formats; V1 compresses the
            // digest, so more nodes fit in one datagram.
            protocol_version: ProtocolVersion::V1,
        };
        let handle = spawn_chitchat(
            chitchat_config,
            self_keys.clone(),
            &BoundUdpTransport::new(socket),
        )
        .await
        .map_err(|error| ClusterError::GossipStart {
            reason: format!("{error:#}"),
        })?;

        let shared = Arc::new(Shared::new(GossipedNode {
            identity: identity_of(&chitchat_id),
            keys: self_keys.into_iter().collect(),
        }));
        if seeds.is_empty() {
            info!(
                cluster_id = %config.cluster_id,
                "no peer seeds: this node starts a cluster of its own"
            );
        }
        let alone_check = AloneCheck {
            cluster_id: config.cluster_id.clone(),
            seeds: seeds.clone(),
            deadline: Instant::now() + config.gossip_interval * ALONE_AFTER_GOSSIP_ROUNDS,
            settled: seeds.is_empty(),
        };
        let (self_keys_tx, self_keys_rx) = mpsc::unbounded_channel();
        let refresher = tokio::spawn(refresh(
            handle.chitchat(),
            shared.clone(),
            self_keys_rx,
            config.gossip_interval,
            alone_check,
        ));
        info!(
            cluster_id = %config.cluster_id,
            node_id = %config.node_id,
            generation = config.generation,
            gossip_listen_addr = %bound,
            gossip_advertise_addr = %advertised,
            seeds = ?seeds,
            sealed,
            "gossip started"
        );
        Ok(Cluster {
            inner: Arc::new(Inner {
                cluster_id: config.cluster_id,
                shared,
                rejected_gossip_datagrams,
                gossip: Some(Gossip {
                    self_keys_tx,
                    gossip_interval: config.gossip_interval,
                    running: Mutex::new(Some(Running {
                        chitchat: handle,
                        refresher,
                    })),
                }),
            }),
        })
    }

    /// A cluster of one that never gossips, ready from the start as single-node Quarry always
    /// was. `listen_addr` is where the REST server actually listens (the configured port may be
    /// 0); `started_at` is the generation.
    pub fn single_node(config: &NodeConfig, listen_addr: SocketAddr, started_at: i64) -> Cluster {
        let host = config
            .advertise_address
            .clone()
            .unwrap_or_else(|| listen_addr.ip().to_string());
        let indexing_capacity = std::thread::available_parallelism()
            .map(|cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let self_keys = initial_key_values(
            &format!("{host}:{}", listen_addr.port()),
            &config.enabled_services,
            indexing_capacity,
            true,
        );
        let self_node = GossipedNode {
            identity: NodeIdentity {
                node_id: config.node_id.clone(),
                generation: u64::try_from(started_at).unwrap_or(0),
                gossip_address: String::new(),
            },
            keys: self_keys.into_iter().collect(),
        };
        Cluster {
            inner: Arc::new(Inner {
                cluster_id: config.cluster_id.clone(),
                shared: Arc::new(Shared::new(self_node)),
                rejected_gossip_datagrams: Arc::new(AtomicU64::new(0)),
                gossip: None,
            }),
        }
    }

    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// Gossip datagrams dropped since the start because they were not sealed with this
    /// cluster's gossip secret: a node configured with another secret or none, or an attacker.
    /// Always 0 without a secret, where chitchat reads every datagram itself.
    pub fn rejected_gossip_datagrams(&self) -> u64 {
        self.inner.rejected_gossip_datagrams.load(Ordering::Relaxed)
    }

    pub fn self_member(&self) -> ClusterMember {
        let state = self.inner.shared.state();
        member_from_keys(&state.self_node.identity, &state.self_node.keys, true)
    }

    /// Published in gossip; peers see it within a gossip round or two.
    pub fn set_ready(&self, ready: bool) {
        self.publish(gossip_keys::READINESS, gossip_keys::readiness_value(ready));
    }

    /// Publishes a key of this node's (the control plane's indexing plan, for one). The keys
    /// this crate publishes itself (`enabled_services`, `rest_address`, `indexing_capacity`,
    /// `readiness`) are refused with a warning: overwriting them would lie about the node.
    pub fn set_self_key(&self, key: &str, value: &str) {
        if gossip_keys::RESERVED.contains(&key) {
            warn!(
                key,
                "refusing to overwrite a membership key through set_self_key"
            );
            return;
        }
        self.publish(key, value);
    }

    fn publish(&self, key: &str, value: &str) {
        self.inner.shared.update(|state| {
            state
                .self_node
                .keys
                .insert(key.to_string(), value.to_string());
        });
        if let Some(gossip) = &self.inner.gossip {
            // Fails only after shutdown, when there is no gossip left to tell.
            let _ = gossip.self_keys_tx.send(SelfKey {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
    }

    /// Live and dead nodes, sorted by node id.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let state = self.inner.shared.state();
        let live_nodes = state.view.live_members();
        let ready_nodes = live_nodes
            .iter()
            .filter(|member| member.ready)
            .cloned()
            .collect();
        ClusterSnapshot {
            cluster_id: self.inner.cluster_id.clone(),
            self_node_id: state.self_node.identity.node_id.clone(),
            live_nodes,
            dead_nodes: state.view.dead.clone(),
            ready_nodes,
        }
    }

    /// Self included, sorted by node id, one entry per node id.
    pub fn live_members(&self) -> Vec<ClusterMember> {
        self.inner.shared.state().view.live_members()
    }

    /// The live, ready nodes running `service` (self included when it qualifies), sorted by
    /// node id: e.g. the searchers a root can fan out to.
    pub fn ready_members_with(&self, service: Service) -> Vec<ClusterMember> {
        let state = self.inner.shared.state();
        state
            .view
            .live
            .iter()
            .map(|node| &node.member)
            .filter(|member| member.ready && member.runs(service))
            .cloned()
            .collect()
    }

    /// The live members, updated on every change of membership or of a member's published
    /// fields.
    pub fn subscribe(&self) -> watch::Receiver<Vec<ClusterMember>> {
        self.inner.shared.members_tx.subscribe()
    }

    /// A key published by a live node (self included), as of the last gossip from it.
    pub fn member_key(&self, node_id: &str, key: &str) -> Option<String> {
        let state = self.inner.shared.state();
        state
            .view
            .live
            .iter()
            .find(|node| node.member.node_id == node_id)
            .and_then(|node| node.keys.get(key).cloned())
    }

    /// Says "not ready" for a couple of gossip rounds, then stops gossiping. chitchat has no
    /// goodbye message: peers list this node as dead once their failure detector gives up on it.
    /// The view stays as it was; other clones of this `Cluster` keep reading it.
    pub async fn shutdown(self) {
        let Some(gossip) = &self.inner.gossip else {
            return;
        };
        let running = gossip
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(running) = running else {
            return;
        };
        self.set_ready(false);
        tokio::time::sleep(gossip.gossip_interval * LEAVE_GOSSIP_ROUNDS).await;
        running.refresher.abort();
        if let Err(error) = running.chitchat.shutdown().await {
            warn!(error = %format!("{error:#}"), "gossip did not stop cleanly");
        }
    }

    #[cfg(test)]
    fn warned_alone(&self) -> bool {
        self.inner.shared.warned_alone.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.shared.state();
        formatter
            .debug_struct("Cluster")
            .field("cluster_id", &self.inner.cluster_id)
            .field("self_node_id", &state.self_node.identity.node_id)
            .field("gossip", &self.inner.gossip.is_some())
            .finish()
    }
}

fn identity_of(chitchat_id: &ChitchatId) -> NodeIdentity {
    NodeIdentity {
        node_id: chitchat_id.node_id.to_string(),
        generation: chitchat_id.generation_id,
        gossip_address: chitchat_id.gossip_advertise_addr.to_string(),
    }
}

/// Keeps the view in step with chitchat, and hands chitchat this node's new keys. Ends when
/// every `Cluster` handle is gone (the key channel closes) or at shutdown.
async fn refresh(
    chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
    shared: Arc<Shared>,
    mut self_keys_rx: mpsc::UnboundedReceiver<SelfKey>,
    gossip_interval: Duration,
    mut alone_check: AloneCheck,
) {
    let mut live_changes = chitchat.lock().await.live_nodes_watcher();
    // The live-nodes watch fires when a node joins, dies or publishes; dead nodes being
    // forgotten after their grace period does not fire it, hence the ticker too.
    let mut ticker = tokio::time::interval(gossip_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut warned_impostors: HashSet<(String, u64)> = HashSet::new();
    loop {
        tokio::select! {
            self_key = self_keys_rx.recv() => {
                let Some(SelfKey { key, value }) = self_key else {
                    return;
                };
                chitchat.lock().await.self_node_state().set(key, value);
                continue;
            }
            changed = live_changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticker.tick() => {}
        }
        let (live_peers, dead_peers) = read_peers(&chitchat).await;
        let heard_from_a_peer = !live_peers.is_empty() || !dead_peers.is_empty();
        let impostors = shared.update(|state| {
            state.live_peers = live_peers;
            state.dead_peers = dead_peers;
        });
        for impostor in impostors {
            if warned_impostors.insert((impostor.node_id.clone(), impostor.generation)) {
                error!(
                    node_id = %impostor.node_id,
                    generation = impostor.generation,
                    gossip_address = %impostor.gossip_address,
                    "another process gossips with this node's id: each node needs its own node_id"
                );
            }
        }
        if alone_check.warn_if_alone(heard_from_a_peer) {
            shared.warned_alone.store(true, Ordering::Relaxed);
        }
    }
}

/// Copies the peers' states out of chitchat, so that its lock is held for no longer than that.
async fn read_peers(
    chitchat: &tokio::sync::Mutex<Chitchat>,
) -> (Vec<GossipedNode>, Vec<GossipedNode>) {
    let chitchat = chitchat.lock().await;
    let self_id = chitchat.self_chitchat_id();
    let gossiped = |chitchat_id: &ChitchatId| GossipedNode {
        identity: identity_of(chitchat_id),
        keys: chitchat
            .node_state(chitchat_id)
            .map(|node_state| {
                node_state
                    .key_values()
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
    };
    let live = chitchat
        .live_nodes()
        .filter(|chitchat_id| *chitchat_id != self_id)
        .map(gossiped)
        .collect();
    let dead = chitchat.dead_nodes().map(gossiped).collect();
    (live, dead)
}

/// Warns once when no peer seed answered: the usual cause is a wrong seed, a closed UDP port or
/// another cluster id, and an operator otherwise sees only a cluster of one.
struct AloneCheck {
    cluster_id: String,
    seeds: Vec<String>,
    deadline: Instant,
    /// A peer answered, or the warning was given: nothing left to check.
    settled: bool,
}

impl AloneCheck {
    /// True when it just warned.
    fn warn_if_alone(&mut self, heard_from_a_peer: bool) -> bool {
        if self.settled {
            return false;
        }
        if heard_from_a_peer {
            self.settled = true;
            return false;
        }
        if Instant::now() < self.deadline {
            return false;
        }
        self.settled = true;
        warn!(
            cluster_id = %self.cluster_id,
            seeds = ?self.seeds,
            "no peer seed answered gossip: this node is alone in its cluster (check peer_seeds, \
             that the seeds' gossip UDP port is open, and that they share this cluster_id)"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seeds: &[&str]) -> ClusterConfig {
        ClusterConfig {
            cluster_id: "alone-test".to_string(),
            node_id: "node-a".to_string(),
            generation: 1,
            gossip_listen_addr: ([127, 0, 0, 1], 0).into(),
            gossip_advertise_addr: ([127, 0, 0, 1], 0).into(),
            rest_advertise_addr: "127.0.0.1:7280".to_string(),
            enabled_services: vec![Service::Searcher],
            peer_seeds: seeds.iter().map(|seed| seed.to_string()).collect(),
            indexing_capacity: 1,
            gossip_interval: Duration::from_millis(50),
            failure_detection: Duration::from_secs(1),
            dead_node_grace_period: Duration::from_secs(60),
            gossip_secret: None,
        }
    }

    #[tokio::test]
    async fn a_node_whose_seeds_do_not_answer_warns_once_that_it_is_alone() {
        let cluster = Cluster::join(config(&["127.0.0.1:1"])).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !cluster.warned_alone() {
            assert!(std::time::Instant::now() < deadline, "no alone warning");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(cluster.live_members(), vec![cluster.self_member()]);
        cluster.shutdown().await;
    }

    #[tokio::test]
    async fn a_node_without_seeds_is_alone_by_design_and_does_not_warn() {
        let cluster = Cluster::join(config(&[])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50) * (ALONE_AFTER_GOSSIP_ROUNDS + 3)).await;
        assert!(!cluster.warned_alone());
        cluster.shutdown().await;
    }

    #[test]
    fn single_node_cluster_reports_itself_ready() {
        let config = NodeConfig {
            node_id: "node-a".to_string(),
            advertise_address: Some("10.0.0.5".to_string()),
            enabled_services: vec![Service::Searcher, Service::Metastore],
            ..NodeConfig::default()
        };
        let cluster = Cluster::single_node(&config, "127.0.0.1:7399".parse().unwrap(), 42);
        let snapshot = cluster.snapshot();
        assert_eq!(snapshot.self_node_id, "node-a");
        assert_eq!(snapshot.ready_nodes.len(), 1);
        assert_eq!(snapshot.ready_nodes[0].rest_address, "10.0.0.5:7399");
        assert_eq!(snapshot.ready_nodes[0].generation, 42);
        assert_eq!(cluster.ready_members_with(Service::Searcher).len(), 1);
        assert!(cluster.ready_members_with(Service::Indexer).is_empty());
        cluster.set_ready(false);
        assert!(cluster.snapshot().ready_nodes.is_empty());
        assert_eq!(cluster.live_members().len(), 1);
    }

    #[test]
    fn membership_keys_cannot_be_overwritten_and_others_are_readable() {
        let cluster =
            Cluster::single_node(&NodeConfig::default(), "127.0.0.1:7280".parse().unwrap(), 1);
        let node_id = cluster.self_member().node_id;
        cluster.set_self_key("rest_address", "10.9.9.9:1");
        assert_eq!(cluster.self_member().rest_address, "127.0.0.1:7280");
        cluster.set_self_key("indexing_plan", "v1");
        assert_eq!(
            cluster.member_key(&node_id, "indexing_plan").as_deref(),
            Some("v1")
        );
        assert_eq!(cluster.member_key("nobody", "indexing_plan"), None);
    }
}
