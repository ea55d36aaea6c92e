//! A running node: membership, storage, metastore, services and the HTTP server, started
//! from a `NodeConfig` and stopped cleanly on SIGINT/SIGTERM.

mod cluster_views;
mod log_directory;
mod plan_follower;
mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use quarry_common::metastore::{
    is_postgres_uri, FileBackedMetastore, Metastore, PostgresMetastore, RemoteMetastore,
};
use quarry_common::storage::StorageResolver;
use quarry_config::{NodeConfig, Service};
use quarry_control_plane::{Cluster, ClusterConfig};
use quarry_indexer::{
    IngestLimits, IngestService, Janitor, JanitorPolicy, MergePlanner, ObjectWalConfig,
};
use quarry_searcher::SearchService;
use tokio::net::TcpListener;
use tracing::info;

use crate::rest::{router, AppState};
use crate::IndexService;

/// The services of a started node, for the embedding code (demo loader, tests).
pub struct Node {
    pub config: NodeConfig,
    pub listen_addr: SocketAddr,
    pub index_service: Arc<IndexService>,
    pub ingest_service: Arc<IngestService>,
    pub search_service: Arc<SearchService>,
    pub cluster: Cluster,
    ready: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    janitor: Option<tokio::task::JoinHandle<()>>,
    merge_planner: Option<tokio::task::JoinHandle<()>>,
    /// The pipeline supervisor; the control plane's loop and the indexing plan's follower
    /// when the logs are on object storage.
    cluster_tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
}

impl Node {
    pub async fn start(mut config: NodeConfig) -> anyhow::Result<Node> {
        // The environment wins over the file, so that automation never writes the key to
        // a config file.
        if let Some(key) = std::env::var("QUARRY_BOOTSTRAP_API_KEY")
            .ok()
            .filter(|key| !key.is_empty())
        {
            config.auth.bootstrap_api_key = Some(key);
        }
        if config.auth_enabled() && !config.peer_seeds.is_empty() && config.cluster_secret.is_none()
        {
            anyhow::bail!(
                "authentication is on in a cluster (peer_seeds are set) but `cluster_secret` is not: internal routes would bypass API keys; set the same cluster_secret on every node"
            );
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data_dir `{}`", config.data_dir.display()))?;
        let resolver = StorageResolver::new(config.storage.s3.clone().unwrap_or_default());
        // The REST port is bound first: the cluster learns this node's real address.
        let requested_addr = config.rest_listen_addr()?;
        // TLS files are read before anything starts, so that a bad one stops the node at once.
        let tls_server = config
            .rest
            .tls
            .as_ref()
            .map(tls::server_config)
            .transpose()?;
        let tls_ca = match &config.rest.tls {
            Some(tls_config) => tls::read_ca(tls_config)?,
            None => None,
        };
        let transport = quarry_common::node_transport::NodeTransport::new(
            config.cluster_secret.as_deref(),
            tls_server.is_some(),
            tls_ca,
        );
        let listener = TcpListener::bind(requested_addr).await.with_context(|| {
            format!("cannot listen on {requested_addr} (is another node running?)")
        })?;
        let listen_addr = listener.local_addr()?;
        let started_at_millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or_default();
        let cluster = join_cluster(&config, listen_addr, started_at_millis).await?;

        let metastore_uri = config.metastore_uri();
        let mut served_metastore = None;
        let mut postgres = None;
        let metastore: Arc<dyn Metastore> = if is_postgres_uri(&metastore_uri) {
            // Connects and migrates the schema; the error names the URI (password masked).
            let connected = Arc::new(
                PostgresMetastore::connect(&metastore_uri)
                    .await
                    .context("cannot open the PostgreSQL metastore")?,
            );
            postgres = Some(connected.clone());
            connected
        } else if config.is_enabled(Service::Metastore) {
            refuse_second_metastore_writer(&config, &cluster).await?;
            let metastore_storage = resolver
                .resolve(&metastore_uri)
                .with_context(|| format!("cannot open metastore at `{metastore_uri}`"))?;
            let metastore: Arc<dyn Metastore> = Arc::new(FileBackedMetastore::new(
                metastore_storage,
                resolver.clone(),
            ));
            served_metastore = Some(metastore.clone());
            metastore
        } else {
            info!("no metastore service here: metastore calls go to the node that runs it");
            Arc::new(RemoteMetastore::new(
                cluster_views::metastore_locator(cluster.clone()),
                METASTORE_RETRY_WINDOW,
                &transport,
            ))
        };
        // Fail fast on an unreadable metastore rather than on the first request.
        metastore
            .list_indexes()
            .await
            .context("cannot read the metastore")?;

        let mut ingest_service = IngestService::new(
            metastore.clone(),
            resolver.clone(),
            config.data_dir.clone(),
            &config.node_id,
            IngestLimits {
                max_in_flight_bytes: config.ingest.max_in_flight_bytes.as_u64(),
                wal_max_bytes: config.ingest.wal_max_bytes.as_u64(),
                wal_sync: config.ingest.wal_sync,
                dedup_window: std::time::Duration::from_secs(config.ingest.dedup_window_secs),
                dedup_max_ids_per_index: config.ingest.dedup_max_ids_per_index,
            },
        )?
        .with_cut_merge_max_docs(config.indexer.cut_merge_max_docs);
        if let Some(wal_uri) = &config.ingest.wal_uri {
            ingest_service = ingest_service.with_object_wal(ObjectWalConfig {
                uri: wal_uri.clone(),
                generation: started_at_millis,
                flush_interval: Duration::from_millis(config.ingest.wal_flush_interval_ms),
                flush_bytes: config.ingest.wal_flush_bytes.as_u64() as usize,
                observe_flush: Some(Arc::new(|took: Duration| {
                    crate::metrics::METRICS
                        .wal_flush_latency
                        .observe(took.as_secs_f64())
                })),
            });
        }
        let ingest_service = Arc::new(ingest_service);
        // Acknowledged documents that a crash kept from being published get indexed now.
        ingest_service.recover().await?;
        let search_service = Arc::new(
            SearchService::new(metastore.clone(), resolver.clone(), &config.searcher)
                .with_searcher_pool(
                    Arc::new(cluster_views::ClusterSearcherPool {
                        cluster: cluster.clone(),
                        self_node_id: config.node_id.clone(),
                    }),
                    &transport,
                ),
        );
        let janitor = config.is_enabled(Service::Janitor).then(|| {
            let janitor = Janitor::new(
                metastore.clone(),
                resolver.clone(),
                JanitorPolicy {
                    staged_timeout: Duration::from_secs(config.janitor.staged_split_timeout_secs),
                    deletion_grace_period: Duration::from_secs(
                        config.janitor.deletion_grace_period_secs,
                    ),
                },
            )
            .with_ownership(cluster_views::index_ownership(
                cluster.clone(),
                config.node_id.clone(),
                Service::Janitor,
            ));
            tokio::spawn(janitor.run(Duration::from_secs(config.janitor.interval_secs.max(1))))
        });
        let merge_planner = if config.is_enabled(Service::Indexer) {
            let planner =
                MergePlanner::new(metastore.clone(), resolver.clone(), config.data_dir.clone())?
                    .with_ownership(cluster_views::index_ownership(
                        cluster.clone(),
                        config.node_id.clone(),
                        Service::Indexer,
                    ));
            Some(tokio::spawn(planner.run(Duration::from_secs(
                config.indexer.merge_interval_secs.max(1),
            ))))
        } else {
            None
        };
        let mut cluster_tasks = Vec::new();
        let supervised = ingest_service.clone();
        let gossip = cluster.clone();
        cluster_tasks.push(tokio::spawn(async move {
            let mut gossiped_own_shards = None;
            for tick in 1u64.. {
                tokio::time::sleep(PIPELINE_SUPERVISION_INTERVAL).await;
                supervised.restart_stopped_pipelines().await;
                if tick % DELETED_INDEX_CHECK_TICKS == 0 {
                    supervised.drop_shards_of_deleted_indexes().await;
                }
                // The control plane balances orphan shards against this load.
                let own_shards = supervised.num_own_shards().await;
                if gossiped_own_shards != Some(own_shards) {
                    gossip.set_self_key(
                        quarry_control_plane::OWN_SHARDS_KEY,
                        &own_shards.to_string(),
                    );
                    gossiped_own_shards = Some(own_shards);
                }
            }
        }));
        if let Some(wal_uri) = &config.ingest.wal_uri {
            let wal_storage = resolver
                .resolve(wal_uri)
                .with_context(|| format!("cannot open ingest.wal_uri `{wal_uri}`"))?;
            if config.is_enabled(Service::ControlPlane) {
                cluster_tasks.push(tokio::spawn(quarry_control_plane::run_control_plane(
                    cluster.clone(),
                    Arc::new(log_directory::WalLogs(quarry_indexer::WalDirectory::new(
                        wal_storage,
                    ))),
                    PLAN_INTERVAL,
                )));
            }
            if config.is_enabled(Service::Indexer) {
                cluster_tasks.push(tokio::spawn(plan_follower::follow_indexing_plan(
                    cluster.clone(),
                    ingest_service.clone(),
                    wal_uri.clone(),
                    PLAN_INTERVAL,
                )));
            }
        }
        let index_service = Arc::new(IndexService::new(
            metastore,
            resolver,
            config.default_index_root_uri(),
            ingest_service.clone(),
            search_service.clone(),
        ));
        let keys = crate::auth::KeyStore::new(index_service.metastore());
        let auth_enabled = config.auth_enabled();
        if auth_enabled {
            // Random admin keys are made where the metastore is served, so that nodes
            // starting together do not each print one; a bootstrap key is the same on all.
            if config.auth.bootstrap_api_key.is_some() || config.is_enabled(Service::Metastore) {
                crate::auth::bootstrap_admin_key(
                    keys.metastore().as_ref(),
                    config.auth.bootstrap_api_key.as_deref(),
                )
                .await
                .context("cannot create the admin API key")?;
            }
            keys.refresh()
                .await
                .map_err(|error| anyhow::anyhow!("cannot read the API keys: {error}"))?;
            cluster_tasks.push(tokio::spawn(keys.clone().run_refresh()));
            info!("authentication is on: requests need an API key");
        }
        let ready = Arc::new(AtomicBool::new(false));
        let state = Arc::new(AppState {
            index_service: index_service.clone(),
            ingest_service: ingest_service.clone(),
            search_service: search_service.clone(),
            max_request_body: config.ingest.max_request_body.as_u64() as usize,
            cluster: cluster.clone(),
            bulk_ids: Arc::new(crate::bulk_ids::BulkIds::new(
                ingest_service.clone(),
                cluster.clone(),
                config.node_id.clone(),
                postgres,
                Duration::from_secs(config.ingest.dedup_window_secs),
                &transport,
            )),
            cluster_secret: config.cluster_secret.clone(),
            transport: transport.clone(),
            served_metastore,
            ready: ready.clone(),
            scrolls: crate::rest::ScrollStore::new(&config.node_id),
            keys,
            auth_enabled,
            tenant_limits: Default::default(),
            tenant_limits_scope: config.auth.tenant_limits_scope,
            index_templates: crate::index_templates::IndexTemplates::new(
                config.index_templates.clone(),
                config.ingest.auto_create_indexes,
            ),
            failed_attempts: crate::auth::FailedAttempts::new(
                config
                    .auth
                    .max_failed_attempts_per_minute
                    .unwrap_or(crate::auth::DEFAULT_MAX_FAILURES),
            ),
        });
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
        let app = router(state);
        let stopped = async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        };
        let server = match tls_server {
            Some(tls_server) => {
                let listener = tls::TlsListener::new(listener, tls_server)?;
                tokio::spawn(async move {
                    axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<crate::auth::ClientAddress>(),
                    )
                    .with_graceful_shutdown(stopped)
                    .await
                })
            }
            // Clients' addresses go with their requests: failed authentications count
            // per address.
            None => tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<crate::auth::ClientAddress>(),
                )
                .with_graceful_shutdown(stopped)
                .await
            }),
        };
        ready.store(true, Ordering::SeqCst);
        cluster.set_ready(true);
        info!(%listen_addr, node_id = %config.node_id, data_dir = %config.data_dir.display(), "node started");
        Ok(Node {
            config,
            listen_addr,
            index_service,
            ingest_service,
            search_service,
            cluster,
            ready,
            server,
            janitor,
            merge_planner,
            cluster_tasks,
            shutdown_tx,
        })
    }

    /// Stops taking requests, lets in-flight ones finish (up to a bound), then publishes
    /// what the indexing pipelines buffered.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!("shutting down");
        self.ready.store(false, Ordering::SeqCst);
        // Peers stop sending leaf work and metastore calls here before the server closes.
        self.cluster.set_ready(false);
        let _ = self.shutdown_tx.send(true);
        match tokio::time::timeout(Duration::from_secs(30), self.server).await {
            Ok(result) => result??,
            Err(_) => {
                tracing::warn!("in-flight requests did not finish within 30s; closing anyway")
            }
        }
        // A merge cut short leaves only a staged split, which the janitor removes.
        if let Some(merge_planner) = self.merge_planner {
            merge_planner.abort();
        }
        for task in self.cluster_tasks {
            task.abort();
        }
        self.ingest_service.shutdown().await;
        if let Some(janitor) = self.janitor {
            janitor.abort();
        }
        self.cluster.shutdown().await;
        info!("shutdown complete");
        Ok(())
    }
}

/// How often stopped indexing pipelines are replaced.
const PIPELINE_SUPERVISION_INTERVAL: Duration = Duration::from_secs(1);
/// Every this many supervision rounds, shards of indexes deleted elsewhere are dropped: one
/// index listing per node every few seconds.
const DELETED_INDEX_CHECK_TICKS: u64 = 5;

/// How often the control plane plans and indexers follow the plan: a dead node's shards
/// move within this much of its death being detected.
const PLAN_INTERVAL: Duration = Duration::from_secs(1);

/// How long a node without the metastore service keeps retrying a metastore call while no
/// metastore node answers (it is starting, or restarting).
const METASTORE_RETRY_WINDOW: Duration = Duration::from_secs(30);

async fn join_cluster(
    config: &NodeConfig,
    rest_listen_addr: SocketAddr,
    generation: u64,
) -> anyhow::Result<Cluster> {
    let host = config
        .advertise_address
        .clone()
        .unwrap_or_else(|| rest_listen_addr.ip().to_string());
    let gossip_listen_addr: SocketAddr =
        format!("{}:{}", config.listen_address, config.gossip_port())
            .parse()
            .with_context(|| format!("`{}` is not an IP address", config.listen_address))?;
    let gossip_advertise_addr: SocketAddr = format!("{host}:{}", gossip_listen_addr.port())
        .parse()
        .with_context(|| format!("advertise_address `{host}` is not an IP address"))?;
    let indexing_capacity = std::thread::available_parallelism()
        .map(|cores| cores.get() as u32)
        .unwrap_or(1);
    let cluster = Cluster::join(ClusterConfig {
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id.clone(),
        generation,
        gossip_listen_addr,
        gossip_advertise_addr,
        rest_advertise_addr: format!("{host}:{}", rest_listen_addr.port()),
        enabled_services: config.enabled_services.clone(),
        peer_seeds: config.peer_seeds.clone(),
        indexing_capacity,
        gossip_interval: Duration::from_millis(config.gossip.interval_ms),
        failure_detection: Duration::from_millis(config.gossip.failure_detection_ms),
        dead_node_grace_period: Duration::from_secs(config.gossip.dead_node_grace_period_secs),
        gossip_secret: config.cluster_secret.clone(),
    })
    .await
    .context("cannot join the cluster")?;
    Ok(cluster)
}

/// A file-backed metastore has one writer: its state lives in that process's memory. A
/// node configured to serve it while a live peer already does refuses to start, rather
/// than silently overwriting the other's writes.
async fn refuse_second_metastore_writer(
    config: &NodeConfig,
    cluster: &Cluster,
) -> anyhow::Result<()> {
    if config.peer_seeds.is_empty() {
        return Ok(());
    }
    // Peers' states arrive within a few gossip rounds.
    tokio::time::sleep(Duration::from_millis(config.gossip.interval_ms * 4)).await;
    let others: Vec<String> = cluster
        .live_members()
        .into_iter()
        .filter(|member| member.node_id != config.node_id)
        .filter(|member| member.enabled_services.contains(&Service::Metastore))
        .map(|member| format!("{} ({})", member.node_id, member.rest_address))
        .collect();
    if let Some(other) = others.first() {
        tracing::error!(
            "node {other} already runs the metastore service of this cluster; a file-backed metastore has exactly one writer"
        );
        anyhow::bail!(
            "node {other} already runs the metastore service: a file-backed metastore has exactly one writer, so remove `metastore` from this node's enabled_services (or use a PostgreSQL metastore, which every node may use directly)"
        );
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
