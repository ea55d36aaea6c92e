use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, Pool, PoolError, Runtime, Transaction};
use quarry_config::IndexConfig;
use serde::de::DeserializeOwned;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;
use tokio_postgres::{NoTls, Row};

use crate::api_keys::ApiKeyRecord;
use tracing::info;

use super::{
    now_secs, CheckpointDelta, DeleteQuery, DeleteTask, IndexMetadata, ListSplitsQuery, Metastore,
    MetastoreError, MetastoreResult, Split, SplitMetadata, SplitState,
};
use crate::{IndexUid, SplitId};

/// Schema migrations, applied in order at start. One that has shipped is never edited:
/// a change is a new migration, so every database walks the same path.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("postgres/migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "delete_tasks",
        sql: include_str!("postgres/migrations/0002_delete_tasks.sql"),
    },
    Migration {
        version: 3,
        name: "bulk_ids",
        sql: include_str!("postgres/migrations/0003_bulk_ids.sql"),
    },
    Migration {
        version: 4,
        name: "api_keys",
        sql: include_str!("postgres/migrations/0004_api_keys.sql"),
    },
];

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Serialises the migrations of nodes starting together: without it two of them race on
/// `CREATE TABLE` and one fails. Any fixed number works; this one is "quarry" in ASCII.
const MIGRATION_LOCK_KEY: i64 = 0x71_75_61_72_72_79;

/// A node's metastore calls are small and short; a few connections cover concurrent
/// searches listing splits while the indexer publishes.
const MAX_CONNECTIONS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a free connection before reporting the database unavailable.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The metastore in a PostgreSQL database (`metastore_uri: postgres://…`), for clusters
/// where several nodes write: the database, not one process, serialises updates.
///
/// Every update is one transaction. Updates of an index lock its `indexes` row: publishes
/// (which rewrite the checkpoint) exclusively, the others shared; so publishes of one index
/// run one at a time and see each other's results, as with the file-backed metastore.
#[derive(Clone)]
pub struct PostgresMetastore {
    pool: Pool,
    /// The connection URI without its password, for messages.
    uri: String,
}

impl fmt::Debug for PostgresMetastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresMetastore")
            .field("uri", &self.uri)
            .finish()
    }
}

/// Whether `uri` names a PostgreSQL metastore rather than a storage location.
pub fn is_postgres_uri(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
}

/// `uri` with its password masked, fit for logs and error messages.
fn redact_uri(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) if url.password().is_some() => {
            // Only fails for URIs that cannot have a password, and this one has one.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        // Unparseable: it may still hold a password, so show only the scheme.
        Err(_) => format!("{}://…", uri.split("://").next().unwrap_or("postgres")),
    }
}

impl PostgresMetastore {
    /// Connects and brings the schema up to date. Fails if the URI is invalid, the
    /// database is unreachable, or its schema is newer than this build.
    pub async fn connect(uri: &str) -> MetastoreResult<PostgresMetastore> {
        let redacted = redact_uri(uri);
        let pg_config: tokio_postgres::Config = uri.parse().map_err(|error| {
            MetastoreError::InvalidArgument(format!(
                "`{redacted}` is not a valid PostgreSQL connection URI: {}",
                describe(&error)
            ))
        })?;
        Self::connect_with_config(pg_config, redacted).await
    }

    /// Like `connect`, from a parsed configuration (tests add a `search_path` to it).
    /// `display_uri` names the database in messages and must not contain a password.
    pub(crate) async fn connect_with_config(
        mut pg_config: tokio_postgres::Config,
        display_uri: String,
    ) -> MetastoreResult<PostgresMetastore> {
        if pg_config.get_hosts().is_empty() && pg_config.get_hostaddrs().is_empty() {
            return Err(MetastoreError::InvalidArgument(format!(
                "`{display_uri}` names no host"
            )));
        }
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(CONNECT_TIMEOUT);
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("quarry");
        }
        let pool = Pool::builder(Manager::new(pg_config, NoTls))
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| {
                MetastoreError::Database(format!("cannot set up a connection pool: {error}"))
            })?;
        let metastore = PostgresMetastore {
            pool,
            uri: display_uri,
        };
        metastore.migrate().await.map_err(|error| match error {
            MetastoreError::Unavailable(message) => {
                MetastoreError::Unavailable(format!("`{}`: {message}", metastore.uri))
            }
            MetastoreError::Database(message) => {
                MetastoreError::Database(format!("`{}`: {message}", metastore.uri))
            }
            other => other,
        })?;
        Ok(metastore)
    }

    /// Applies the migrations the database lacks, all in one transaction: a failure leaves
    /// the schema as it was. Idempotent; safe when several nodes start at once.
    async fn migrate(&self) -> MetastoreResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        // Otherwise every start logs the server's "already exists, skipping" notice.
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
        let applied = tx
            .query("SELECT version FROM schema_migrations", &[])
            .await?
            .iter()
            .map(|row| row.try_get::<_, i32>(0))
            .collect::<Result<Vec<i32>, _>>()?;
        let known = MIGRATIONS.last().map_or(0, |migration| migration.version);
        if let Some(newest) = applied.iter().copied().filter(|v| *v > known).max() {
            return Err(MetastoreError::Database(format!(
                "the metastore schema is at version {newest}, but this build of quarry knows versions up to {known}: run a newer quarry"
            )));
        }
        for migration in MIGRATIONS {
            if applied.contains(&migration.version) {
                continue;
            }
            tx.batch_execute(migration.sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )
            .await?;
            info!(
                version = migration.version,
                name = migration.name,
                "metastore schema migrated"
            );
        }
        tx.commit().await?;
        Ok(())
    }

    fn corrupt(&self, what: String, message: impl fmt::Display) -> MetastoreError {
        MetastoreError::Corrupt {
            path: format!("{} {what}", self.uri),
            message: message.to_string(),
        }
    }

    fn json_column<T: DeserializeOwned>(
        &self,
        row: &Row,
        column: &str,
        what: impl FnOnce() -> String,
    ) -> MetastoreResult<T> {
        let value: serde_json::Value = row.try_get(column)?;
        serde_json::from_value(value).map_err(|error| self.corrupt(what(), error))
    }

    fn index_metadata_from_row(&self, row: &Row) -> MetastoreResult<IndexMetadata> {
        let index_id: String = row.try_get("index_id")?;
        self.json_column(row, "index_metadata", || {
            format!("table `indexes`, index `{index_id}`")
        })
    }

    fn split_from_row(&self, row: &Row) -> MetastoreResult<Split> {
        let split_id: String = row.try_get("split_id")?;
        let state: String = row.try_get("split_state")?;
        let split_state = parse_split_state(&state).ok_or_else(|| {
            self.corrupt(
                format!("table `splits`, split `{split_id}`"),
                format!("unknown split state `{state}`"),
            )
        })?;
        Ok(Split {
            split_metadata: self.json_column(row, "split_metadata", || {
                format!("table `splits`, split `{split_id}`")
            })?,
            split_state,
            update_timestamp: row.try_get("update_timestamp")?,
            publish_timestamp: row.try_get("publish_timestamp")?,
        })
    }
}

fn split_state_name(state: SplitState) -> &'static str {
    match state {
        SplitState::Staged => "staged",
        SplitState::Published => "published",
        SplitState::MarkedForDeletion => "marked_for_deletion",
    }
}

fn parse_split_state(name: &str) -> Option<SplitState> {
    match name {
        "staged" => Some(SplitState::Staged),
        "published" => Some(SplitState::Published),
        "marked_for_deletion" => Some(SplitState::MarkedForDeletion),
        _ => None,
    }
}

/// How an update holds its index's row for the rest of its transaction.
#[derive(Clone, Copy)]
enum IndexLock {
    /// Updates that touch only their own split rows: they may run together, but not
    /// during a publish or a delete of the index.
    Shared,
    /// Publishes (which rewrite the checkpoint) and deletes: one at a time.
    Exclusive,
}

/// Locks the row of `index_uid` and returns it, or `IndexNotFound` if the index does not
/// exist or is another incarnation.
async fn lock_index(
    tx: &Transaction<'_>,
    index_uid: &IndexUid,
    lock: IndexLock,
) -> MetastoreResult<Row> {
    let sql = match lock {
        IndexLock::Shared => {
            "SELECT index_id, index_uid FROM indexes WHERE index_id = $1 FOR SHARE"
        }
        IndexLock::Exclusive => {
            "SELECT index_id, index_uid, index_metadata FROM indexes WHERE index_id = $1 FOR UPDATE"
        }
    };
    let statement = tx.prepare_cached(sql).await?;
    let row = tx
        .query_opt(&statement, &[&index_uid.index_id()])
        .await?
        .ok_or_else(|| MetastoreError::IndexNotFound(index_uid.index_id().to_string()))?;
    let stored_uid: String = row.try_get("index_uid")?;
    if stored_uid != index_uid.to_string() {
        return Err(MetastoreError::IndexNotFound(index_uid.to_string()));
    }
    Ok(row)
}

/// Locks the rows of `split_ids` (in id order, so that concurrent updates never deadlock)
/// and returns their states; unknown ids are absent.
async fn lock_splits(
    tx: &Transaction<'_>,
    index_uid: &str,
    split_ids: &[&str],
) -> MetastoreResult<HashMap<String, String>> {
    let statement = tx
        .prepare_cached(
            "SELECT split_id, split_state FROM splits
             WHERE index_uid = $1 AND split_id = ANY($2)
             ORDER BY split_id FOR UPDATE",
        )
        .await?;
    tx.query(&statement, &[&index_uid, &split_ids])
        .await?
        .iter()
        .map(|row| Ok((row.try_get("split_id")?, row.try_get("split_state")?)))
        .collect()
}

/// For messages: the state as the file-backed metastore words it (`Published`).
fn state_for_message(state: &str) -> String {
    parse_split_state(state).map_or_else(|| state.to_string(), |state| format!("{state:?}"))
}

#[async_trait]
impl Metastore for PostgresMetastore {
    async fn create_index(&self, index_config: IndexConfig) -> MetastoreResult<IndexMetadata> {
        let index_id = index_config.index_id.clone();
        if index_config.index_uri.is_none() {
            return Err(MetastoreError::InvalidArgument(format!(
                "index `{index_id}` has no index_uri"
            )));
        }
        let metadata = IndexMetadata {
            index_uid: IndexUid::new(&index_id),
            index_config,
            checkpoints: Default::default(),
            create_timestamp: now_secs(),
        };
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO indexes (index_id, index_uid, index_metadata, create_timestamp)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (index_id) DO NOTHING",
            )
            .await?;
        let inserted = client
            .execute(
                &statement,
                &[
                    &index_id,
                    &metadata.index_uid.to_string(),
                    &Json(&metadata),
                    &metadata.create_timestamp,
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(MetastoreError::IndexAlreadyExists(index_id));
        }
        Ok(metadata)
    }

    async fn index_metadata(&self, index_id: &str) -> MetastoreResult<IndexMetadata> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT index_id, index_metadata FROM indexes WHERE index_id = $1")
            .await?;
        let row = client
            .query_opt(&statement, &[&index_id])
            .await?
            .ok_or_else(|| MetastoreError::IndexNotFound(index_id.to_string()))?;
        self.index_metadata_from_row(&row)
    }

    async fn list_indexes(&self) -> MetastoreResult<Vec<IndexMetadata>> {
        let client = self.pool.get().await?;
        // Byte order, like the file-backed manifest's sorted map.
        let statement = client
            .prepare_cached(
                r#"SELECT index_id, index_metadata FROM indexes ORDER BY index_id COLLATE "C""#,
            )
            .await?;
        client
            .query(&statement, &[])
            .await?
            .iter()
            .map(|row| self.index_metadata_from_row(row))
            .collect()
    }

    async fn delete_index(&self, index_uid: &IndexUid) -> MetastoreResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Exclusive).await?;
        // The splits' rows go with it (ON DELETE CASCADE).
        tx.execute(
            "DELETE FROM indexes WHERE index_uid = $1",
            &[&index_uid.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn stage_splits(
        &self,
        index_uid: &IndexUid,
        mut splits: Vec<SplitMetadata>,
    ) -> MetastoreResult<()> {
        let now = now_secs();
        let uid = index_uid.to_string();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Shared).await?;
        // Rows are locked in id order so that two stagers never deadlock; the sort is
        // stable, so a duplicated id keeps its last metadata, as in the file-backed one.
        splits.sort_by(|left, right| left.split_id.cmp(&right.split_id));
        // Restaging a staged split (a retried upload) overwrites it; any other state stays.
        let upsert = tx
            .prepare_cached(
                "INSERT INTO splits (index_uid, split_id, split_state, update_timestamp,
                                     publish_timestamp, time_range_start, time_range_end,
                                     split_metadata)
                 VALUES ($1, $2, 'staged', $3, NULL, $4, $5, $6)
                 ON CONFLICT (index_uid, split_id) DO UPDATE SET
                     update_timestamp = EXCLUDED.update_timestamp,
                     time_range_start = EXCLUDED.time_range_start,
                     time_range_end = EXCLUDED.time_range_end,
                     split_metadata = EXCLUDED.split_metadata
                 WHERE splits.split_state = 'staged'",
            )
            .await?;
        for split in &splits {
            let split_id = split.split_id.as_str();
            let written = tx
                .execute(
                    &upsert,
                    &[
                        &uid,
                        &split_id,
                        &now,
                        &split.time_range.map(|range| range.start),
                        &split.time_range.map(|range| range.end),
                        &Json(split),
                    ],
                )
                .await?;
            if written == 0 {
                let states = lock_splits(&tx, &uid, &[split_id]).await?;
                let state = states.get(split_id).map_or("unknown", String::as_str);
                return Err(MetastoreError::SplitsNotInExpectedState {
                    index_id: index_uid.index_id().to_string(),
                    message: format!(
                        "split `{split_id}` is {}, cannot stage it again",
                        state_for_message(state)
                    ),
                });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn publish_splits(
        &self,
        index_uid: &IndexUid,
        staged_split_ids: &[SplitId],
        replaced_split_ids: &[SplitId],
        checkpoint_delta: Option<CheckpointDelta>,
    ) -> MetastoreResult<()> {
        let now = now_secs();
        let uid = index_uid.to_string();
        let index_id = index_uid.index_id().to_string();
        let staged: Vec<&str> = staged_split_ids.iter().map(SplitId::as_str).collect();
        let replaced: Vec<&str> = replaced_split_ids.iter().map(SplitId::as_str).collect();
        let involved: Vec<&str> = staged.iter().chain(&replaced).copied().collect();

        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Taken first and exclusively: a racing publisher waits here, then reads the
        // states and checkpoint this one committed.
        let index_row = lock_index(&tx, index_uid, IndexLock::Exclusive).await?;
        let states = lock_splits(&tx, &uid, &involved).await?;

        // The checks, their order and their messages follow the file-backed metastore.
        let missing: Vec<String> = involved
            .iter()
            .filter(|split_id| !states.contains_key(**split_id))
            .map(|split_id| split_id.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(MetastoreError::SplitsNotFound {
                index_id,
                split_ids: missing,
            });
        }
        let expect = |split_ids: &[&str], expected: SplitState, rule: &str| {
            for split_id in split_ids {
                let state = states.get(*split_id).map_or("unknown", String::as_str);
                if state != split_state_name(expected) {
                    return Err(MetastoreError::SplitsNotInExpectedState {
                        index_id: index_id.clone(),
                        message: format!(
                            "split `{split_id}` is {}, {rule}",
                            state_for_message(state)
                        ),
                    });
                }
            }
            Ok(())
        };
        expect(
            &staged,
            SplitState::Staged,
            "only staged splits can be published",
        )?;
        expect(
            &replaced,
            SplitState::Published,
            "only published splits can be replaced",
        )?;

        if let Some(delta) = &checkpoint_delta {
            let mut metadata = self.index_metadata_from_row(&index_row)?;
            metadata
                .checkpoints
                .entry(delta.source_id.clone())
                .or_default()
                .try_apply(delta)
                .map_err(|message| MetastoreError::CheckpointConflict {
                    index_id: index_id.clone(),
                    message,
                })?;
            tx.execute(
                "UPDATE indexes SET index_metadata = $2 WHERE index_id = $1",
                &[&index_id, &Json(&metadata)],
            )
            .await?;
        }
        if !staged.is_empty() {
            tx.execute(
                "UPDATE splits
                 SET split_state = 'published', update_timestamp = $3, publish_timestamp = $3
                 WHERE index_uid = $1 AND split_id = ANY($2)",
                &[&uid, &staged, &now],
            )
            .await?;
        }
        if !replaced.is_empty() {
            tx.execute(
                "UPDATE splits SET split_state = 'marked_for_deletion', update_timestamp = $3
                 WHERE index_uid = $1 AND split_id = ANY($2)",
                &[&uid, &replaced, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_splits(
        &self,
        index_uid: &IndexUid,
        query: &ListSplitsQuery,
    ) -> MetastoreResult<Vec<Split>> {
        let client = self.pool.get().await?;
        let index = client
            .prepare_cached("SELECT index_uid FROM indexes WHERE index_id = $1")
            .await?;
        let stored_uid: Option<String> = client
            .query_opt(&index, &[&index_uid.index_id()])
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        match stored_uid {
            None => {
                return Err(MetastoreError::IndexNotFound(
                    index_uid.index_id().to_string(),
                ))
            }
            Some(stored_uid) if stored_uid != index_uid.to_string() => {
                return Err(MetastoreError::IndexNotFound(index_uid.to_string()))
            }
            Some(_) => {}
        }
        let states: Vec<&str> = query.states.iter().copied().map(split_state_name).collect();
        // The same filter as `ListSplitsQuery::matches`: no states means all; a split's
        // inclusive time range overlaps [start, end); a split without one always matches.
        let statement = client
            .prepare_cached(
                r#"SELECT split_id, split_state, update_timestamp, publish_timestamp, split_metadata
                   FROM splits
                   WHERE index_uid = $1
                     AND (cardinality($2::text[]) = 0 OR split_state = ANY($2::text[]))
                     AND (time_range_start IS NULL
                          OR (($3::bigint IS NULL OR time_range_end >= $3::bigint)
                              AND ($4::bigint IS NULL OR time_range_start < $4::bigint)))
                   ORDER BY split_id COLLATE "C""#,
            )
            .await?;
        client
            .query(
                &statement,
                &[
                    &index_uid.to_string(),
                    &states,
                    &query.start_timestamp,
                    &query.end_timestamp,
                ],
            )
            .await?
            .iter()
            .map(|row| self.split_from_row(row))
            .collect()
    }

    async fn mark_splits_for_deletion(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()> {
        let uid = index_uid.to_string();
        let split_ids: Vec<&str> = split_ids.iter().map(SplitId::as_str).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Shared).await?;
        lock_splits(&tx, &uid, &split_ids).await?;
        // Unknown ids are skipped: marking is retried after crashes.
        tx.execute(
            "UPDATE splits SET split_state = 'marked_for_deletion', update_timestamp = $3
             WHERE index_uid = $1 AND split_id = ANY($2)",
            &[&uid, &split_ids, &now_secs()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_splits(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()> {
        let uid = index_uid.to_string();
        let split_ids: Vec<&str> = split_ids.iter().map(SplitId::as_str).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Shared).await?;
        // Locked, so no split can get published between this check and the delete.
        let states = lock_splits(&tx, &uid, &split_ids).await?;
        let published = split_state_name(SplitState::Published);
        if let Some(split_id) = split_ids
            .iter()
            .find(|split_id| states.get(**split_id).map(String::as_str) == Some(published))
        {
            return Err(MetastoreError::SplitsNotInExpectedState {
                index_id: index_uid.index_id().to_string(),
                message: format!("split `{split_id}` is published; mark it for deletion first"),
            });
        }
        tx.execute(
            "DELETE FROM splits WHERE index_uid = $1 AND split_id = ANY($2)",
            &[&uid, &split_ids],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_delete_task(&self, delete_query: DeleteQuery) -> MetastoreResult<DeleteTask> {
        let index_uid = delete_query.index_uid.clone();
        let uid = index_uid.to_string();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Exclusive: two tasks created together get different opstamps.
        lock_index(&tx, &index_uid, IndexLock::Exclusive).await?;
        let last: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(opstamp), 0) FROM delete_tasks WHERE index_uid = $1",
                &[&uid],
            )
            .await?
            .try_get(0)?;
        let task = DeleteTask {
            opstamp: last as u64 + 1,
            create_timestamp: now_secs(),
            delete_query,
        };
        tx.execute(
            "INSERT INTO delete_tasks (index_uid, opstamp, create_timestamp, delete_query)
             VALUES ($1, $2, $3, $4)",
            &[
                &uid,
                &(task.opstamp as i64),
                &task.create_timestamp,
                &Json(&task.delete_query),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(task)
    }

    async fn list_delete_tasks(
        &self,
        index_uid: &IndexUid,
        opstamp_start: u64,
    ) -> MetastoreResult<Vec<DeleteTask>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Shared).await?;
        let rows = tx
            .query(
                "SELECT opstamp, create_timestamp, delete_query FROM delete_tasks
                 WHERE index_uid = $1 AND opstamp > $2 ORDER BY opstamp",
                &[
                    &index_uid.to_string(),
                    &(opstamp_start.min(i64::MAX as u64) as i64),
                ],
            )
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                let opstamp: i64 = row.try_get("opstamp")?;
                Ok(DeleteTask {
                    opstamp: opstamp as u64,
                    create_timestamp: row.try_get("create_timestamp")?,
                    delete_query: self.json_column(row, "delete_query", || {
                        format!("delete task {opstamp} of `{index_uid}`")
                    })?,
                })
            })
            .collect()
    }

    async fn last_delete_opstamp(&self, index_uid: &IndexUid) -> MetastoreResult<u64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Shared).await?;
        let last: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(opstamp), 0) FROM delete_tasks WHERE index_uid = $1",
                &[&index_uid.to_string()],
            )
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(last as u64)
    }

    async fn update_splits_delete_opstamp(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
        delete_opstamp: u64,
    ) -> MetastoreResult<()> {
        let uid = index_uid.to_string();
        let split_ids: Vec<&str> = split_ids.iter().map(SplitId::as_str).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_index(&tx, index_uid, IndexLock::Shared).await?;
        lock_splits(&tx, &uid, &split_ids).await?;
        // Only published splits move: a replaced one is on its way out.
        tx.execute(
            "UPDATE splits SET
                 split_metadata = jsonb_set(split_metadata, '{delete_opstamp}',
                     to_jsonb(GREATEST((split_metadata->>'delete_opstamp')::BIGINT, $3))),
                 update_timestamp = $4
             WHERE index_uid = $1 AND split_id = ANY($2) AND split_state = 'published'",
            &[
                &uid,
                &split_ids,
                &(delete_opstamp.min(i64::MAX as u64) as i64),
                &now_secs(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> MetastoreResult<bool> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                "INSERT INTO api_keys (id, record) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&record.id, &Json(&record)],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn list_api_keys(&self) -> MetastoreResult<Vec<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(r#"SELECT record FROM api_keys ORDER BY id COLLATE "C""#)
            .await?;
        client
            .query(&statement, &[])
            .await?
            .iter()
            .map(|row| {
                let value: serde_json::Value = row.try_get(0)?;
                serde_json::from_value(value).map_err(|error| MetastoreError::Corrupt {
                    path: "api_keys".to_string(),
                    message: error.to_string(),
                })
            })
            .collect()
    }

    async fn invalidate_api_keys(&self, ids: &[String]) -> MetastoreResult<Vec<String>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "UPDATE api_keys SET record = jsonb_set(record, '{invalidated}', 'true')
                 WHERE id = ANY($1) AND NOT (record->>'invalidated')::boolean
                 RETURNING id",
                &[&ids],
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0).map_err(MetastoreError::from))
            .collect()
    }
}

/// The error and its cause: tokio-postgres' `Display` leaves the cause out ("db error").
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db_error) = error.as_db_error() {
        let mut text = format!(
            "{} {}: {}",
            db_error.severity(),
            db_error.code().code(),
            db_error.message()
        );
        if let Some(detail) = db_error.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

/// Transient failures (the connection, a deadlock, a server restarting) become
/// `Unavailable`, which callers retry; the rest (permissions, a bug in a statement)
/// become `Database`.
impl From<tokio_postgres::Error> for MetastoreError {
    fn from(error: tokio_postgres::Error) -> MetastoreError {
        let transient = match error.code() {
            Some(code) => {
                code.code().starts_with("08")
                    || [
                        SqlState::T_R_DEADLOCK_DETECTED,
                        SqlState::T_R_SERIALIZATION_FAILURE,
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::TOO_MANY_CONNECTIONS,
                    ]
                    .contains(code)
            }
            None => {
                error.is_closed()
                    || std::error::Error::source(&error)
                        .is_some_and(|source| source.is::<std::io::Error>())
            }
        };
        if transient {
            MetastoreError::Unavailable(describe(&error))
        } else {
            MetastoreError::Database(describe(&error))
        }
    }
}

impl From<PoolError> for MetastoreError {
    fn from(error: PoolError) -> MetastoreError {
        match error {
            PoolError::Backend(error) => error.into(),
            PoolError::Timeout(_) | PoolError::Closed => {
                MetastoreError::Unavailable(format!("no database connection: {error}"))
            }
            other => MetastoreError::Database(other.to_string()),
        }
    }
}

mod bulk_ids;
#[cfg(test)]
mod tests;

pub use bulk_ids::BulkIdClaim;
