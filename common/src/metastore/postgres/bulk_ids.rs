//! The `_bulk` `_id` window of a PostgreSQL cluster, in the database every node already
//! uses: a claim is one transaction, so two nodes claiming the same id at once cannot both
//! win, and nothing is lost with any node.

use std::collections::{HashMap, HashSet};

use super::PostgresMetastore;
use crate::metastore::{now_secs, MetastoreResult};

/// What a claim decided for one `_id` (as the indexer's dedup window decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkIdClaim {
    /// Not seen within the window: index the document, then settle the id.
    New,
    /// Accepted within the window (or repeated in the same batch): acknowledge, do not index.
    Duplicate,
    /// Claimed by a request that has not settled yet: the client should retry.
    InFlight,
}

impl PostgresMetastore {
    /// Decides, id by id and in order, which documents of a `_bulk` request to index.
    /// Accepted ids older than `window_secs`, and claims older than `pending_timeout_secs`
    /// that never settled (their node died), no longer count.
    pub async fn claim_bulk_ids(
        &self,
        index_id: &str,
        ids: &[String],
        window_secs: i64,
        pending_timeout_secs: i64,
    ) -> MetastoreResult<Vec<BulkIdClaim>> {
        let now = now_secs();
        let mut unique: Vec<&str> = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for id in ids {
            if seen.insert(id.as_str()) {
                unique.push(id);
            }
        }
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute(
                "DELETE FROM bulk_ids WHERE index_id = $1
                 AND (claimed_at < $2 OR (NOT accepted AND claimed_at < $3))",
                &[
                    &index_id,
                    &(now - window_secs),
                    &(now - pending_timeout_secs),
                ],
            )
            .await?;
        let inserted: HashSet<String> = transaction
            .query(
                "INSERT INTO bulk_ids (index_id, doc_id, claimed_at, accepted)
                 SELECT $1, doc_id, $3, false FROM unnest($2::text[]) AS doc_id
                 ON CONFLICT (index_id, doc_id) DO NOTHING
                 RETURNING doc_id",
                &[&index_id, &unique, &now],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let others: Vec<&str> = unique
            .iter()
            .copied()
            .filter(|id| !inserted.contains(*id))
            .collect();
        let accepted: HashMap<String, bool> = if others.is_empty() {
            HashMap::new()
        } else {
            transaction
                .query(
                    "SELECT doc_id, accepted FROM bulk_ids WHERE index_id = $1 AND doc_id = ANY($2)",
                    &[&index_id, &others],
                )
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect()
        };
        transaction.commit().await?;
        let mut claimed_here = HashSet::new();
        Ok(ids
            .iter()
            .map(|id| {
                if inserted.contains(id) {
                    if claimed_here.insert(id.as_str()) {
                        BulkIdClaim::New
                    } else {
                        BulkIdClaim::Duplicate
                    }
                } else if accepted.get(id).copied().unwrap_or(false) {
                    BulkIdClaim::Duplicate
                } else {
                    BulkIdClaim::InFlight
                }
            })
            .collect())
    }

    /// Remembers the ids whose documents are now durable and frees the claims of those
    /// that were rejected, so a corrected retry is indexed.
    pub async fn settle_bulk_ids(
        &self,
        index_id: &str,
        accepted: &[String],
        rejected: &[String],
    ) -> MetastoreResult<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        if !accepted.is_empty() {
            transaction
                .execute(
                    "UPDATE bulk_ids SET accepted = true, claimed_at = $3
                     WHERE index_id = $1 AND doc_id = ANY($2)",
                    &[&index_id, &accepted, &now_secs()],
                )
                .await?;
        }
        if !rejected.is_empty() {
            transaction
                .execute(
                    "DELETE FROM bulk_ids WHERE index_id = $1 AND doc_id = ANY($2) AND NOT accepted",
                    &[&index_id, &rejected],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Forgets every id of an index (deleted, or never created).
    pub async fn forget_bulk_ids(&self, index_id: &str) -> MetastoreResult<()> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM bulk_ids WHERE index_id = $1", &[&index_id])
            .await?;
        Ok(())
    }
}
