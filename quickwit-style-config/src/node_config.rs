use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{ByteSize, ConfigError};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Indexer,
    Searcher,
    ControlPlane,
    Metastore,
    Janitor,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Indexer,
        Service::Searcher,
        Service::ControlPlane,
        Service::Metastore,
        Service::Janitor,
    ];
}

/// A node's configuration. Every key is optional: the defaults make the embedded
/// single-node setup of DESIGN.md.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "default_node_id")]
    pub node_id: String,
    #[serde(default = "default_cluster_id")]
    pub cluster_id: String,
    #[serde(default = "default_listen_address")]
    pub listen_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    #[serde(default)]
    pub rest: RestConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gossip_listen_port: Option<u16>,
    #[serde(default)]
    pub peer_seeds: Vec<String>,
    #[serde(default)]
    pub gossip: GossipConfig,
    /// Nodes prove it to each other on `/internal/v1` (header `x-quarry-cluster-secret`),
    /// and gossip is sealed with a key derived from it; unset, neither is authenticated.
    /// Use a random value of at least 128 bits, e.g. `${QUARRY_CLUSTER_SECRET}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_secret: Option<String>,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metastore_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_index_root_uri: Option<String>,
    #[serde(default = "default_services")]
    pub enabled_services: Vec<Service>,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub searcher: SearcherConfig,
    #[serde(default)]
    pub indexer: IndexerConfig,
    #[serde(default)]
    pub janitor: JanitorConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// The configs of indexes a `_bulk` request creates on first use (see
    /// `ingest.auto_create_indexes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_templates: Vec<crate::IndexTemplate>,
}

/// API-key authentication of the REST API.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Unset: on when `listen_address` is not a loopback address or a bootstrap key is
    /// given, off on loopback (the demo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `<id>:<key>` (a key of at least 32 characters): the admin key created at first
    /// start instead of a random one, so that scripts know it in advance. The environment
    /// variable `QUARRY_BOOTSTRAP_API_KEY` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_api_key: Option<String>,
    /// Wrong credentials one client address may send per minute before it is refused
    /// (429) for the rest of that minute. Default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_attempts_per_minute: Option<u32>,
    /// Whether a key's `limits` hold for the whole cluster (the default) or for each node.
    #[serde(default)]
    pub tenant_limits_scope: TenantLimitsScope,
}

/// How the nodes share a key's limits.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TenantLimitsScope {
    /// Each node takes an equal share of the limit among the ready nodes that serve the
    /// traffic (indexers for ingest, searchers for searches), as Loki's `global` strategy
    /// does: right when a load balancer spreads a tenant's requests over the nodes.
    #[default]
    Cluster,
    /// Each node enforces the whole limit on what it serves.
    Node,
}

impl NodeConfig {
    /// Whether requests must carry an API key.
    pub fn auth_enabled(&self) -> bool {
        self.auth.enabled.unwrap_or_else(|| {
            self.auth.bootstrap_api_key.is_some()
                || !self
                    .listen_address
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|address| address.is_loopback())
        })
    }
}

/// Membership timing. Shorter detection moves work off a dead node sooner and mistakes a
/// paused one for dead sooner.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GossipConfig {
    #[serde(default = "default_gossip_interval_ms")]
    pub interval_ms: u64,
    /// How long a silent node stays live before it is declared dead.
    #[serde(default = "default_failure_detection_ms")]
    pub failure_detection_ms: u64,
    /// How long a dead node stays listed in `/api/v1/cluster`.
    #[serde(default = "default_dead_node_grace_period_secs")]
    pub dead_node_grace_period_secs: u64,
}

fn default_gossip_interval_ms() -> u64 {
    500
}

fn default_failure_detection_ms() -> u64 {
    5_000
}

fn default_dead_node_grace_period_secs() -> u64 {
    3_600
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            interval_ms: default_gossip_interval_ms(),
            failure_detection_ms: default_failure_detection_ms(),
            dead_node_grace_period_secs: default_dead_node_grace_period_secs(),
        }
    }
}

/// Background work of the indexer service.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexerConfig {
    /// How often the merge planner looks for splits to merge (each index's merge policy
    /// decides which).
    #[serde(default = "default_merge_interval_secs")]
    pub merge_interval_secs: u64,
    /// Splits of at most this many documents are merged into one segment when cut (it
    /// takes milliseconds, and queries pay per segment); bigger ones keep a segment per
    /// writer thread until the merge policy merges them.
    #[serde(default = "default_cut_merge_max_docs")]
    pub cut_merge_max_docs: u64,
}

fn default_merge_interval_secs() -> u64 {
    10
}
fn default_cut_merge_max_docs() -> u64 {
    100_000
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            merge_interval_secs: default_merge_interval_secs(),
            cut_merge_max_docs: default_cut_merge_max_docs(),
        }
    }
}

/// When the janitor runs and how long it waits before deleting.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JanitorConfig {
    #[serde(default = "default_janitor_interval_secs")]
    pub interval_secs: u64,
    /// Searches that started before a split was replaced or dropped get this long to
    /// finish reading it.
    #[serde(default = "default_deletion_grace_period_secs")]
    pub deletion_grace_period_secs: u64,
    /// A split staged this long ago belongs to an upload that will never publish.
    #[serde(default = "default_staged_split_timeout_secs")]
    pub staged_split_timeout_secs: u64,
}

fn default_janitor_interval_secs() -> u64 {
    60
}
fn default_deletion_grace_period_secs() -> u64 {
    300
}
fn default_staged_split_timeout_secs() -> u64 {
    3600
}

impl Default for JanitorConfig {
    fn default() -> Self {
        JanitorConfig {
            interval_secs: default_janitor_interval_secs(),
            deletion_grace_period_secs: default_deletion_grace_period_secs(),
            staged_split_timeout_secs: default_staged_split_timeout_secs(),
        }
    }
}

/// Cache sizes of the searcher.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SearcherConfig {
    /// Opened splits kept in memory, bounded by the bytes of their footers and hotcaches
    /// (Quickwit's name for it).
    #[serde(default = "default_split_footer_cache_capacity")]
    pub split_footer_cache_capacity: ByteSize,
    /// Byte ranges fetched from splits (columns, dictionary and postings blocks).
    #[serde(default = "default_range_cache_bytes")]
    pub range_cache_bytes: ByteSize,
    /// Source-store blocks decoded for fetches (the hits' documents), for the whole node.
    #[serde(default = "default_source_block_cache_bytes")]
    pub source_block_cache_bytes: ByteSize,
    /// Per-split results of recent (query, sort, aggregations), by count; 0 turns it off.
    #[serde(default = "default_partial_result_cache_entries")]
    pub partial_result_cache_entries: usize,
    /// Milliseconds added to every GET a search makes, to see on local storage what a
    /// distant object store (S3 answers in 20–50 ms) does to searches. 0 in production.
    #[serde(default)]
    pub simulated_get_latency_ms: u64,
    /// Fetch what a search will read from object storage before running it, concurrently
    /// (the default). Off, the search fetches each range as tantivy reads it, one round
    /// trip after another: there for comparison (`bench/cold.sh`). Indexes on the local
    /// filesystem are read as the search goes either way (unless `simulated_get_latency_ms`
    /// makes them distant): a read there is a system call, not a round trip.
    #[serde(default = "default_true")]
    pub warmup: bool,
}

fn default_split_footer_cache_capacity() -> ByteSize {
    ByteSize::mib(500)
}
fn default_range_cache_bytes() -> ByteSize {
    ByteSize::mib(256)
}
/// A page of hits usually shares a block, but a rare term's newest hits lie a block apart
/// each: at 64 MiB, the bench's 100 hits of `(declined OR exceeded) AND NOT INFO` (two
/// segments) no longer fitted.
fn default_source_block_cache_bytes() -> ByteSize {
    ByteSize::mib(128)
}
fn default_partial_result_cache_entries() -> usize {
    1_000
}

impl Default for SearcherConfig {
    fn default() -> Self {
        SearcherConfig {
            split_footer_cache_capacity: default_split_footer_cache_capacity(),
            range_cache_bytes: default_range_cache_bytes(),
            source_block_cache_bytes: default_source_block_cache_bytes(),
            partial_result_cache_entries: default_partial_result_cache_entries(),
            simulated_get_latency_ms: 0,
            warmup: true,
        }
    }
}

fn default_version() -> String {
    "0.1".to_string()
}

fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "quarry-node".to_string())
}
fn default_cluster_id() -> String {
    "quarry-default-cluster".to_string()
}
fn default_listen_address() -> String {
    "127.0.0.1".to_string()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./qdata")
}
fn default_services() -> Vec<Service> {
    Service::ALL.to_vec()
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    #[serde(default = "default_rest_port")]
    pub listen_port: u16,
    /// HTTPS instead of HTTP on the REST port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The REST port's certificate and key, PEM files. In a cluster every node runs TLS or
/// none does; `ca_path` is the CA the nodes' certificates chain to, which node-to-node
/// calls trust (without it, the platform's roots).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<PathBuf>,
}

fn default_rest_port() -> u16 {
    7280
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            listen_port: default_rest_port(),
            tls: None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub force_path_style_access: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Bodies over this size are refused with 413 before being read in full.
    #[serde(default = "default_max_request_body")]
    pub max_request_body: ByteSize,
    /// Request bytes being mapped or queued for indexing at once; past it ingest answers
    /// 429 instead of growing memory.
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: ByteSize,
    /// Disk the write-ahead logs may use before ingest answers 429 (they shrink as
    /// splits publish).
    #[serde(default = "default_wal_max_bytes")]
    pub wal_max_bytes: ByteSize,
    /// `false` skips the fsync before acknowledging: only for measuring what durability
    /// costs. Acknowledged batches can then be lost on power failure (not on a process
    /// crash: the page cache survives that).
    #[serde(default = "default_wal_sync")]
    pub wal_sync: bool,
    /// `_bulk` documents whose `_id` the index accepted this many seconds ago or less are
    /// acknowledged without being indexed again (shippers retry whole batches).
    #[serde(default = "default_dedup_window_secs")]
    pub dedup_window_secs: u64,
    /// Remembered `_id`s per index; past it the oldest are forgotten early.
    #[serde(default = "default_dedup_max_ids_per_index")]
    pub dedup_max_ids_per_index: usize,
    /// Where the write-ahead logs live. Unset: `{data_dir}/wal` on this node's disk. An
    /// object-storage URI (`s3://bucket/wal`): each node writes its own shards there, and
    /// an acknowledged document survives the loss of the node that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_uri: Option<String>,
    /// With `wal_uri`: requests are written together, one object per shard, every this
    /// many milliseconds…
    #[serde(default = "default_wal_flush_interval_ms")]
    pub wal_flush_interval_ms: u64,
    /// …or as soon as this many bytes are waiting, whichever comes first.
    #[serde(default = "default_wal_flush_bytes")]
    pub wal_flush_bytes: ByteSize,
    /// A `_bulk` item for an index that does not exist creates it when one of
    /// `index_templates` matches its name; without a matching template, it is refused
    /// (`index_not_found_exception`) whatever this says.
    #[serde(default = "default_true")]
    pub auto_create_indexes: bool,
}

fn default_true() -> bool {
    true
}

fn default_wal_flush_interval_ms() -> u64 {
    100
}

fn default_wal_flush_bytes() -> ByteSize {
    ByteSize::mib(8)
}

fn default_dedup_window_secs() -> u64 {
    15 * 60
}

fn default_dedup_max_ids_per_index() -> usize {
    1_000_000
}

fn default_wal_sync() -> bool {
    true
}

fn default_max_in_flight_bytes() -> ByteSize {
    ByteSize::mib(256)
}

fn default_wal_max_bytes() -> ByteSize {
    ByteSize::mib(4096)
}

fn default_max_request_body() -> ByteSize {
    ByteSize::mib(10)
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_request_body: default_max_request_body(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            wal_max_bytes: default_wal_max_bytes(),
            wal_sync: default_wal_sync(),
            dedup_window_secs: default_dedup_window_secs(),
            dedup_max_ids_per_index: default_dedup_max_ids_per_index(),
            wal_uri: None,
            wal_flush_interval_ms: default_wal_flush_interval_ms(),
            wal_flush_bytes: default_wal_flush_bytes(),
            auto_create_indexes: default_true(),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        // An empty document takes every default; this cannot fail.
        serde_yaml_ng::from_str("{}").unwrap_or_else(|_| unreachable!("empty node config"))
    }
}

impl NodeConfig {
    /// Parses a YAML node config (JSON works too) after `${VAR:-default}` interpolation.
    pub fn parse_yaml(text: &str) -> Result<NodeConfig, ConfigError> {
        let text = crate::interpolate_env_vars(text)?;
        let config: NodeConfig = if text.trim().is_empty() {
            NodeConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|err| ConfigError::Parse(err.to_string()))?
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.trim().is_empty() {
            return Err(ConfigError::invalid("node_id", "must not be empty"));
        }
        for (position, template) in self.index_templates.iter().enumerate() {
            template.validate()?;
            if self.index_templates[..position]
                .iter()
                .any(|earlier| earlier.template_id == template.template_id)
            {
                return Err(ConfigError::invalid(
                    "index_templates",
                    format!("two templates have the id `{}`", template.template_id),
                ));
            }
        }
        self.rest_listen_addr()?;
        if self.enabled_services.is_empty() {
            return Err(ConfigError::invalid(
                "enabled_services",
                "at least one service must be enabled",
            ));
        }
        if self.gossip.interval_ms == 0
            || self.gossip.failure_detection_ms < 2 * self.gossip.interval_ms
        {
            return Err(ConfigError::invalid(
                "gossip.failure_detection_ms",
                format!(
                    "must be at least twice gossip.interval_ms ({} ms), which must not be 0",
                    self.gossip.interval_ms
                ),
            ));
        }
        if self
            .cluster_secret
            .as_deref()
            .is_some_and(|secret| secret.trim().is_empty())
        {
            return Err(ConfigError::invalid(
                "cluster_secret",
                "must not be empty (leave it out to run without one)",
            ));
        }
        for (position, seed) in self.peer_seeds.iter().enumerate() {
            if !seed.contains(':') {
                return Err(ConfigError::invalid(
                    format!("peer_seeds[{position}]"),
                    format!("`{seed}` must be `host:port`"),
                ));
            }
        }
        Ok(())
    }

    pub fn rest_listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let address = format!("{}:{}", self.listen_address, self.rest.listen_port);
        address.parse().map_err(|_| {
            ConfigError::invalid(
                "listen_address",
                format!("`{}` is not an IP address", self.listen_address),
            )
        })
    }

    pub fn gossip_port(&self) -> u16 {
        self.gossip_listen_port.unwrap_or(self.rest.listen_port)
    }

    pub fn metastore_uri(&self) -> String {
        self.metastore_uri
            .clone()
            .unwrap_or_else(|| self.data_dir.join("indexes").to_string_lossy().into_owned())
    }

    pub fn default_index_root_uri(&self) -> String {
        self.default_index_root_uri
            .clone()
            .unwrap_or_else(|| self.data_dir.join("indexes").to_string_lossy().into_owned())
    }

    pub fn is_enabled(&self, service: Service) -> bool {
        self.enabled_services.contains(&service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_embedded_default() {
        let config = NodeConfig::parse_yaml("").unwrap();
        assert_eq!(config.rest.listen_port, 7280);
        assert_eq!(config.gossip_port(), 7280);
        assert_eq!(config.listen_address, "127.0.0.1");
        assert_eq!(config.data_dir, PathBuf::from("./qdata"));
        assert_eq!(config.metastore_uri(), "./qdata/indexes");
        assert_eq!(config.enabled_services, Service::ALL.to_vec());
        assert_eq!(config.ingest.max_request_body, ByteSize::mib(10));
        assert_eq!(config.searcher.source_block_cache_bytes, ByteSize::mib(128));
    }

    #[test]
    fn full_config_parses() {
        let yaml = r#"
version: 0.1
node_id: node-1
cluster_id: my-cluster
listen_address: 127.0.0.1
advertise_address: 127.0.0.1
rest:
  listen_port: ${QUARRY_TEST_UNSET_PORT:-7300}
gossip_listen_port: 7301
peer_seeds: [127.0.0.1:7290]
data_dir: /tmp/q
metastore_uri: s3://bucket/indexes
enabled_services: [indexer, searcher]
storage:
  s3: { endpoint: http://127.0.0.1:9000, region: us-east-1, force_path_style_access: true }
searcher:
  source_block_cache_bytes: 64MiB
"#;
        let config = NodeConfig::parse_yaml(yaml).unwrap();
        assert_eq!(config.rest.listen_port, 7300);
        assert_eq!(config.gossip_port(), 7301);
        assert_eq!(config.metastore_uri(), "s3://bucket/indexes");
        assert_eq!(config.default_index_root_uri(), "/tmp/q/indexes");
        assert!(config.is_enabled(Service::Indexer));
        assert!(!config.is_enabled(Service::Janitor));
        let s3 = config.storage.s3.unwrap();
        assert!(s3.force_path_style_access);
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(config.searcher.source_block_cache_bytes, ByteSize::mib(64));
        assert_eq!(config.searcher.range_cache_bytes, ByteSize::mib(256));
    }

    #[test]
    fn errors_name_the_field() {
        let err = NodeConfig::parse_yaml("listen_address: not-an-ip").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `listen_address`: `not-an-ip` is not an IP address"
        );
        let err = NodeConfig::parse_yaml("enabled_services: [indexer, cook]").unwrap_err();
        assert!(err.to_string().contains("unknown variant `cook`"), "{err}");
        let err = NodeConfig::parse_yaml("rest: {port: 1}").unwrap_err();
        assert!(err.to_string().contains("unknown field `port`"), "{err}");
    }
}
