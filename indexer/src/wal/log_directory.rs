//! What the control plane sees of the logs on object storage: which shards each writer's
//! log holds. It reads the tables of contents of the logs it is asked about (those of dead
//! generations) once per object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use quarry_common::storage::Storage;

use super::object_format::parse_object_key;
use super::object_log::TocCache;

/// The logs under `ingest.wal_uri`: `{node_id}.{generation}/{seq}.wal`.
pub struct WalDirectory {
    storage: Arc<dyn Storage>,
    tocs: TocCache,
}

impl WalDirectory {
    pub fn new(storage: Arc<dyn Storage>) -> WalDirectory {
        WalDirectory {
            storage,
            tocs: TocCache::default(),
        }
    }

    /// The shards (named by `wal_dir_name` of their index) that the logs of the writers
    /// (`{node_id}.{generation}`) not in `skip` hold, by writer. Only the listing is paid
    /// for the skipped writers' logs.
    pub async fn shards_by_writer(
        &self,
        skip: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
        let keys = self
            .storage
            .list("")
            .await
            .map_err(|error| error.to_string())?;
        let objects: Vec<String> = keys
            .into_iter()
            .filter(|key| parse_object_key(key).is_some())
            .collect();
        self.tocs.retain_listed(self.storage.as_ref(), &objects);
        let mut shards: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for key in &objects {
            let Some((writer, _)) = key.split_once('/') else {
                continue;
            };
            if skip.contains(writer) {
                continue;
            }
            let sections = self
                .tocs
                .sections(self.storage.as_ref(), key)
                .await
                .map_err(|error| error.to_string())?;
            if let Some(sections) = sections {
                shards
                    .entry(writer.to_string())
                    .or_default()
                    .extend(sections.iter().map(|section| section.shard.clone()));
            }
        }
        Ok(shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::object_log::{NodeLog, ObjectLogOptions};
    use crate::wal::ShardLog;
    use quarry_common::storage::StorageResolver;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_the_shards_of_the_writers_asked_about() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = StorageResolver::new(Default::default());
        let root = dir.path().to_str().unwrap();
        for (writer, shards) in [
            ("node-1.5", ["a_01", "b_01"]),
            ("node-2.9", ["b_01", "c_01"]),
        ] {
            let storage = resolver.resolve(&format!("{root}/{writer}")).unwrap();
            let node_log = NodeLog::start(
                storage,
                Arc::new(TocCache::default()),
                ObjectLogOptions {
                    flush_interval: std::time::Duration::from_millis(5),
                    flush_bytes: 1024,
                    observe_flush: None,
                },
            );
            for shard in shards {
                node_log
                    .open_shard(shard, 0)
                    .append(b"line\n".to_vec())
                    .await
                    .unwrap();
            }
        }
        let directory = WalDirectory::new(resolver.resolve(root).unwrap());
        let all = directory.shards_by_writer(&BTreeSet::new()).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["node-2.9"].iter().collect::<Vec<_>>(), ["b_01", "c_01"]);
        let skip = BTreeSet::from(["node-1.5".to_string()]);
        let dead = directory.shards_by_writer(&skip).await.unwrap();
        assert_eq!(dead.keys().collect::<Vec<_>>(), ["node-2.9"]);
    }
}
