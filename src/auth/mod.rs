//! Who a request comes from and what it may do: API keys checked against the metastore's
//! records (`key_store`), the admin key made at first start (`bootstrap`), and the
//! `Principal` that handlers consult. The REST layer's `rest::auth` applies it per route.

mod bootstrap;
mod failed_attempts;
mod key_store;
mod limits;

use std::sync::Arc;

use quarry_common::api_keys::{ApiKeyRecord, ClusterAction, IndexAction};
use quarry_searcher::IndexFilter;

pub(crate) use bootstrap::bootstrap_admin_key;
pub(crate) use failed_attempts::{FailedAttempts, DEFAULT_MAX_FAILURES};
pub(crate) use key_store::{now_ms, AuthError, KeyStore};
pub(crate) use limits::node_share;
pub(crate) use limits::{TenantLimiter, Throttled};

/// The caller of a request.
#[derive(Clone, Debug)]
pub(crate) enum Principal {
    /// Authentication is off on this node (the loopback demo): everything is allowed.
    Unrestricted,
    Key(Arc<ApiKeyRecord>),
}

impl Principal {
    pub(crate) fn allows_index(&self, action: IndexAction, index_id: &str) -> bool {
        match self {
            Principal::Unrestricted => true,
            Principal::Key(key) => key.allows_index(action, index_id),
        }
    }

    pub(crate) fn allows_cluster(&self, action: ClusterAction) -> bool {
        match self {
            Principal::Unrestricted => true,
            Principal::Key(key) => key.allows_cluster(action),
        }
    }

    /// The indexes this caller may `action`, for resolving patterns.
    pub(crate) fn index_filter(&self, action: IndexAction) -> IndexFilter {
        match self {
            Principal::Unrestricted => quarry_searcher::every_index(),
            Principal::Key(key) => {
                let key = key.clone();
                Arc::new(move |index_id: &str| key.allows_index(action, index_id))
            }
        }
    }

    /// The key's id, which binds scroll contexts to their opener.
    pub(crate) fn key_id(&self) -> Option<&str> {
        match self {
            Principal::Unrestricted => None,
            Principal::Key(key) => Some(&key.id),
        }
    }
}

/// The privileges an action needs, as Elasticsearch names them in its errors.
pub(crate) fn index_privileges_for(action: IndexAction) -> &'static str {
    match action {
        IndexAction::Read => "read,all",
        IndexAction::ViewMetadata => "read,view_index_metadata,manage,all",
        IndexAction::Write => "write,index,create,create_doc,delete,all",
        IndexAction::Manage => "manage,create_index,delete_index,all",
    }
}

pub(crate) fn cluster_privileges_for(action: ClusterAction) -> &'static str {
    match action {
        ClusterAction::Monitor => "monitor,manage,all",
        ClusterAction::Manage => "manage,all",
        ClusterAction::ManageSecurity => "manage_security,all",
    }
}

/// The address a request came from, over plain TCP or TLS: failed authentications are
/// counted per address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddress(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddress
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddress(*stream.remote_addr())
    }
}
