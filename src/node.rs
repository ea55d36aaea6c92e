//! A running node: storage, metastore, services and the HTTP server, started from a
//! `NodeConfig` and stopped cleanly on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use quarry_common::metastore::{
    is_postgres_uri, FileBackedMetastore, Metastore, PostgresMetastore,
};
use quarry_common::storage::StorageResolver;
use quarry_config::{NodeConfig, Service};
use quarry_control_plane::Cluster;
use quarry_indexer::{IngestLimits, IngestService, Janitor, JanitorPolicy, MergePlanner};
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
    ready: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    janitor: Option<tokio::task::JoinHandle<()>>,
    merge_planner: Option<tokio::task::JoinHandle<()>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
}

impl Node {
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data_dir `{}`", config.data_dir.display()))?;
        let resolver = StorageResolver::new(config.storage.s3.clone().unwrap_or_default());
        let metastore_uri = config.metastore_uri();
        let metastore: Arc<dyn Metastore> = if is_postgres_uri(&metastore_uri) {
            // Connects and migrates the schema; the error names the URI (password masked).
            Arc::new(
                PostgresMetastore::connect(&metastore_uri)
                    .await
                    .context("cannot open the PostgreSQL metastore")?,
            )
        } else {
            let metastore_storage = resolver
                .resolve(&metastore_uri)
                .with_context(|| format!("cannot open metastore at `{metastore_uri}`"))?;
            Arc::new(FileBackedMetastore::new(
                metastore_storage,
                resolver.clone(),
            ))
        };
        // Fail fast on an unreadable metastore rather than on the first request.
        metastore
            .list_indexes()
            .await
            .context("cannot read the metastore")?;

        let ingest_service = Arc::new(
            IngestService::new(
                metastore.clone(),
                resolver.clone(),
                config.data_dir.clone(),
                IngestLimits {
                    max_in_flight_bytes: config.ingest.max_in_flight_bytes.as_u64(),
                    wal_max_bytes: config.ingest.wal_max_bytes.as_u64(),
                    wal_sync: config.ingest.wal_sync,
                    dedup_window: std::time::Duration::from_secs(config.ingest.dedup_window_secs),
                    dedup_max_ids_per_index: config.ingest.dedup_max_ids_per_index,
                },
            )?
            .with_cut_merge_max_docs(config.indexer.cut_merge_max_docs),
        );
        // Acknowledged documents that a crash kept from being published get indexed now.
        ingest_service.recover().await?;
        let search_service = Arc::new(SearchService::new(
            metastore.clone(),
            resolver.clone(),
            &config.searcher,
        ));
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
            );
            tokio::spawn(janitor.run(Duration::from_secs(config.janitor.interval_secs.max(1))))
        });
        let merge_planner = if config.is_enabled(Service::Indexer) {
            let planner =
                MergePlanner::new(metastore.clone(), resolver.clone(), config.data_dir.clone())?;
            Some(tokio::spawn(planner.run(Duration::from_secs(
                config.indexer.merge_interval_secs.max(1),
            ))))
        } else {
            None
        };
        let index_service = Arc::new(IndexService::new(
            metastore,
            resolver,
            config.default_index_root_uri(),
            ingest_service.clone(),
            search_service.clone(),
        ));
        let ready = Arc::new(AtomicBool::new(false));
        let requested_addr = config.rest_listen_addr()?;
        let listener = TcpListener::bind(requested_addr).await.with_context(|| {
            format!("cannot listen on {requested_addr} (is another node running?)")
        })?;
        let listen_addr = listener.local_addr()?;
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or_default();
        let state = Arc::new(AppState {
            index_service: index_service.clone(),
            ingest_service: ingest_service.clone(),
            search_service: search_service.clone(),
            max_request_body: config.ingest.max_request_body.as_u64() as usize,
            cluster: Cluster::single_node(&config, listen_addr, started_at),
            ready: ready.clone(),
            scrolls: Default::default(),
        });
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
        let app = router(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown_rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        ready.store(true, Ordering::SeqCst);
        info!(%listen_addr, node_id = %config.node_id, data_dir = %config.data_dir.display(), "node started");
        Ok(Node {
            config,
            listen_addr,
            index_service,
            ingest_service,
            search_service,
            ready,
            server,
            janitor,
            merge_planner,
            shutdown_tx,
        })
    }

    /// Stops taking requests, lets in-flight ones finish (up to a bound), then publishes
    /// what the indexing pipelines buffered.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!("shutting down");
        self.ready.store(false, Ordering::SeqCst);
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
        self.ingest_service.shutdown().await;
        if let Some(janitor) = self.janitor {
            janitor.abort();
        }
        info!("shutdown complete");
        Ok(())
    }
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
