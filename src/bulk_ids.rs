//! Where `_bulk` `_id`s are deduplicated. A shipper that retries a batch may reach any node
//! of a cluster, so every node asks the same place: with PostgreSQL, a table every node
//! reaches directly; with the file-backed metastore, the node that serves it, which keeps
//! the window of accepted ids (journaled on its disk). Both forget the claims of requesters
//! that never settled them (a node that died mid-request). A node alone, or one that sees no
//! host, uses its own window.

use std::sync::Arc;
use std::time::Duration;

use quarry_common::metastore::{BulkIdClaim, PostgresMetastore};
use quarry_config::Service;
use quarry_control_plane::Cluster;
use quarry_indexer::{IdClaim, IngestService};
use serde::{Deserialize, Serialize};

pub(crate) const DEDUP_ENDPOINT: &str = "/internal/v1/dedup";

/// A claim whose request never settled stops blocking retries after this long (as in the
/// indexer's own window).
const PENDING_TIMEOUT_SECS: i64 = 120;

/// One call to the host's window.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum DedupRequest {
    Claim {
        index_id: String,
        ids: Vec<String>,
    },
    Settle {
        index_id: String,
        accepted: Vec<String>,
        rejected: Vec<String>,
    },
    Forget {
        index_id: String,
    },
}

/// `IdClaim` as it crosses the network.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireClaim {
    New,
    Duplicate,
    InFlight,
}

impl From<IdClaim> for WireClaim {
    fn from(claim: IdClaim) -> WireClaim {
        match claim {
            IdClaim::New => WireClaim::New,
            IdClaim::Duplicate => WireClaim::Duplicate,
            IdClaim::InFlight => WireClaim::InFlight,
        }
    }
}

impl From<WireClaim> for IdClaim {
    fn from(claim: WireClaim) -> IdClaim {
        match claim {
            WireClaim::New => IdClaim::New,
            WireClaim::Duplicate => IdClaim::Duplicate,
            WireClaim::InFlight => IdClaim::InFlight,
        }
    }
}

pub(crate) struct BulkIds {
    transport: quarry_common::node_transport::NodeTransport,
    ingest_service: Arc<IngestService>,
    /// With PostgreSQL, the window is in the database.
    postgres: Option<Arc<PostgresMetastore>>,
    window_secs: i64,
    cluster: Cluster,
    self_node_id: String,

    http: reqwest::Client,
}

impl BulkIds {
    pub(crate) fn new(
        ingest_service: Arc<IngestService>,
        cluster: Cluster,
        self_node_id: String,
        postgres: Option<Arc<PostgresMetastore>>,
        window: Duration,
        transport: &quarry_common::node_transport::NodeTransport,
    ) -> BulkIds {
        BulkIds {
            ingest_service,
            postgres,
            window_secs: window.as_secs() as i64,
            cluster,
            self_node_id,
            transport: transport.clone(),
            http: transport
                .client_builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The REST address of the node serving the file-backed metastore, `None` when it is
    /// this node (or there is none).
    fn remote_host(&self) -> Option<String> {
        let host = self
            .cluster
            .ready_members_with(Service::Metastore)
            .into_iter()
            .next()?;
        (host.node_id != self.self_node_id).then_some(host.rest_address)
    }

    pub(crate) async fn claim(
        &self,
        index_id: &str,
        ids: Vec<String>,
    ) -> Result<Vec<IdClaim>, String> {
        if let Some(postgres) = &self.postgres {
            let claims = postgres
                .claim_bulk_ids(index_id, &ids, self.window_secs, PENDING_TIMEOUT_SECS)
                .await
                .map_err(|error| error.to_string())?;
            return Ok(claims
                .into_iter()
                .map(|claim| match claim {
                    BulkIdClaim::New => IdClaim::New,
                    BulkIdClaim::Duplicate => IdClaim::Duplicate,
                    BulkIdClaim::InFlight => IdClaim::InFlight,
                })
                .collect());
        }
        let request = DedupRequest::Claim {
            index_id: index_id.to_string(),
            ids,
        };
        let answer = self.call(request).await?;
        let claims: Vec<WireClaim> = serde_json::from_value(answer)
            .map_err(|error| format!("the dedup host's answer does not parse: {error}"))?;
        Ok(claims.into_iter().map(IdClaim::from).collect())
    }

    pub(crate) async fn settle(
        &self,
        index_id: &str,
        accepted: Vec<String>,
        rejected: Vec<String>,
    ) -> Result<(), String> {
        if let Some(postgres) = &self.postgres {
            return postgres
                .settle_bulk_ids(index_id, &accepted, &rejected)
                .await
                .map_err(|error| error.to_string());
        }
        self.call(DedupRequest::Settle {
            index_id: index_id.to_string(),
            accepted,
            rejected,
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn forget_index(&self, index_id: &str) {
        if let Some(postgres) = &self.postgres {
            if let Err(error) = postgres.forget_bulk_ids(index_id).await {
                tracing::warn!(index_id, "cannot forget the index's _ids: {error}");
            }
            return;
        }
        if let Err(error) = self
            .call(DedupRequest::Forget {
                index_id: index_id.to_string(),
            })
            .await
        {
            tracing::warn!(index_id, "cannot forget the index's _ids: {error}");
        }
    }

    async fn call(&self, request: DedupRequest) -> Result<serde_json::Value, String> {
        let Some(host) = self.remote_host() else {
            return self.serve(request).await;
        };
        // A host restarting or changing answers within a few tries.
        let mut backoff = Duration::from_millis(50);
        for attempt in 1.. {
            let outcome = self
                .http
                .post(self.transport.url(&host, DEDUP_ENDPOINT))
                .json(&request)
                .send()
                .await;
            match outcome {
                Ok(response) if response.status().is_success() => {
                    return response
                        .json()
                        .await
                        .map_err(|error| format!("dedup host {host}: {error}"))
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    return Err(format!("dedup host {host} answered {status}: {body}"));
                }
                Err(error) if error.is_connect() && attempt < 5 => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => return Err(format!("dedup host {host}: {error}")),
            }
        }
        unreachable!("the loop returns")
    }

    /// Runs a call on this node's own window: the host's handler, and a node alone.
    pub(crate) async fn serve(&self, request: DedupRequest) -> Result<serde_json::Value, String> {
        let ingest_service = self.ingest_service.clone();
        // The window reads and fsyncs its journal files.
        tokio::task::spawn_blocking(move || {
            let dedup = ingest_service.dedup();
            match request {
                DedupRequest::Claim { index_id, ids } => {
                    let claims = dedup
                        .claim(&index_id, &as_strs(&ids))
                        .map_err(|error| error.to_string())?;
                    let claims: Vec<WireClaim> = claims.into_iter().map(WireClaim::from).collect();
                    serde_json::to_value(claims).map_err(|error| error.to_string())
                }
                DedupRequest::Settle {
                    index_id,
                    accepted,
                    rejected,
                } => {
                    dedup.release(&index_id, &as_strs(&rejected));
                    let accepted = as_strs(&accepted);
                    let confirmed = dedup.confirm(&index_id, &accepted);
                    if confirmed.is_err() {
                        dedup.release(&index_id, &accepted);
                    }
                    confirmed
                        .map(|()| serde_json::Value::Null)
                        .map_err(|error| error.to_string())
                }
                DedupRequest::Forget { index_id } => {
                    dedup.forget_index(&index_id);
                    Ok(serde_json::Value::Null)
                }
            }
        })
        .await
        .map_err(|error| format!("`_id` deduplication panicked: {error}"))?
    }
}

fn as_strs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_and_strict() {
        let request: DedupRequest =
            serde_json::from_str(r#"{"op": "claim", "index_id": "logs", "ids": ["a"]}"#).unwrap();
        assert!(matches!(request, DedupRequest::Claim { .. }));
        let error = serde_json::from_str::<DedupRequest>(r#"{"op": "claim", "index_id": "logs"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `ids`"), "{error}");
        assert_eq!(
            serde_json::to_string(&WireClaim::from(IdClaim::InFlight)).unwrap(),
            "\"in_flight\""
        );
    }
}
