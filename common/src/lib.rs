//! Types and building blocks shared by indexers and searchers: ids, object storage,
//! the split file format, the doc mapper and the metastore.

pub mod api_keys;
pub mod cluster_secret;
pub mod doc_mapper;
pub mod ids;
pub mod metastore;
pub mod node_transport;
pub mod pattern;
pub mod split;
pub mod storage;
pub mod time_range;

pub use ids::{stable_hash, IndexUid, SplitId};
