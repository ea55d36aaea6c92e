//! The control plane's view of the write-ahead logs, read by the indexer's own format code.

use std::collections::BTreeSet;

use async_trait::async_trait;
use quarry_control_plane::{LogDirectory, ShardKey};
use quarry_indexer::WalDirectory;

pub(crate) struct WalLogs(pub(crate) WalDirectory);

#[async_trait]
impl LogDirectory for WalLogs {
    async fn orphan_shards(
        &self,
        live_writers: &BTreeSet<String>,
    ) -> Result<BTreeSet<ShardKey>, String> {
        let by_writer = self.0.shards_by_writer(live_writers).await?;
        Ok(by_writer
            .into_iter()
            .flat_map(|(writer, shards)| {
                shards.into_iter().map(move |index| ShardKey {
                    index,
                    shard_id: writer.clone(),
                })
            })
            .collect())
    }
}
