use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;

use super::*;
use crate::metastore::tests_suite::{config, metastore_suite, TestBackend};

/// The server the tests use, `None` (with a loud message) to skip outside CI.
fn test_url() -> Option<String> {
    match std::env::var("QUARRY_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("CI must run the PostgreSQL tests: QUARRY_TEST_POSTGRES_URL is not set (see .ci/run)")
        }
        Err(_) => {
            eprintln!("SKIPPED: PostgreSQL metastore test (set QUARRY_TEST_POSTGRES_URL, e.g. postgres://quarry@127.0.0.1:5433/quarry_test, to run it)");
            None
        }
    }
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A schema of its own for one test, so tests and runs never see each other's rows;
/// returns the connection config pointing at it and the schema's name.
async fn fresh_schema(url: &str) -> (tokio_postgres::Config, String) {
    let schema = format!(
        "quarry_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    admin_client(url)
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let mut pg_config: tokio_postgres::Config = url.parse().unwrap();
    pg_config.options(format!("-c search_path={schema}"));
    (pg_config, schema)
}

async fn drop_schema(url: String, schema: String) {
    admin_client(&url)
        .await
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

async fn connect(pg_config: &tokio_postgres::Config) -> MetastoreResult<PostgresMetastore> {
    PostgresMetastore::connect_with_config(pg_config.clone(), "test database".to_string()).await
}

mod suite {
    use super::*;

    async fn backend() -> Option<TestBackend> {
        let url = test_url()?;
        let (pg_config, schema) = fresh_schema(&url).await;
        let backend = TestBackend::new(format!("ram:///postgres-suite/{schema}"), move || {
            let pg_config = pg_config.clone();
            async move {
                let metastore: Arc<dyn Metastore> = Arc::new(connect(&pg_config).await.unwrap());
                metastore
            }
            .boxed()
        });
        Some(backend.with_teardown(drop_schema(url, schema).boxed()))
    }

    metastore_suite!(backend());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_migrate_once() {
    let Some(url) = test_url() else { return };
    let (pg_config, schema) = fresh_schema(&url).await;
    let starts = (0..4).map(|_| connect(&pg_config));
    for result in futures::future::join_all(starts).await {
        result.unwrap();
    }
    // A restart finds the schema current and changes nothing.
    let metastore = connect(&pg_config).await.unwrap();
    metastore
        .create_index(config("logs", "ram:///pg"))
        .await
        .unwrap();
    connect(&pg_config).await.unwrap();
    let client = metastore.pool.get().await.unwrap();
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let known: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, known);
    assert_eq!(metastore.list_indexes().await.unwrap().len(), 1);
    drop(client);
    drop_schema(url, schema).await;
}

#[tokio::test]
async fn refuses_a_schema_newer_than_this_build() {
    let Some(url) = test_url() else { return };
    let (pg_config, schema) = fresh_schema(&url).await;
    let metastore = connect(&pg_config).await.unwrap();
    metastore
        .pool
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')",
            &[],
        )
        .await
        .unwrap();
    let err = connect(&pg_config).await.unwrap_err();
    let known = MIGRATIONS.last().map_or(0, |migration| migration.version);
    assert_eq!(
        err.to_string(),
        format!("metastore database error: `test database`: the metastore schema is at version 999, but this build of quarry knows versions up to {known}: run a newer quarry")
    );
    drop_schema(url, schema).await;
}

#[tokio::test]
async fn corrupt_rows_are_reported() {
    let Some(url) = test_url() else { return };
    let (pg_config, schema) = fresh_schema(&url).await;
    let metastore = connect(&pg_config).await.unwrap();
    let uid = metastore
        .create_index(config("logs", "ram:///pg"))
        .await
        .unwrap()
        .index_uid;
    let client = metastore.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE indexes SET index_metadata = '{\"index_uid\": 7}' WHERE index_id = 'logs'",
            &[],
        )
        .await
        .unwrap();
    let err = metastore.index_metadata("logs").await.unwrap_err();
    assert!(matches!(err, MetastoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            "metastore state `test database table `indexes`, index `logs`` is corrupt"
        ),
        "{err}"
    );
    // Splits' rows are checked the same way.
    client
        .execute(
            "INSERT INTO splits (index_uid, split_id, split_state, update_timestamp, split_metadata)
             VALUES ($1, 'broken', 'published', 0, '{}')",
            &[&uid.to_string()],
        )
        .await
        .unwrap();
    let err = metastore
        .list_splits(&uid, &ListSplitsQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MetastoreError::Corrupt { .. }), "{err}");
    drop(client);
    drop_schema(url, schema).await;
}

/// Needs no server: nothing listens on port 1.
#[tokio::test]
async fn unreachable_database_is_a_clear_transient_error() {
    let started = Instant::now();
    let err = PostgresMetastore::connect("postgres://quarry:s3cret@127.0.0.1:1/quarry")
        .await
        .unwrap_err();
    assert!(matches!(err, MetastoreError::Unavailable(_)), "{err}");
    assert!(err.is_transient());
    let message = err.to_string();
    assert!(
        message.starts_with(
            "metastore database unavailable: `postgres://quarry:***@127.0.0.1:1/quarry`: "
        ),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(started.elapsed() < CONNECT_TIMEOUT);
}

#[tokio::test]
async fn invalid_uris_are_refused() {
    for (uri, expected) in [
        (
            "postgres://quarry:s3cret@127.0.0.1:notaport/quarry",
            "invalid request: `postgres://…` is not a valid PostgreSQL connection URI: invalid connection string: invalid value for option `port`",
        ),
        (
            "postgres:///quarry",
            "invalid request: `postgres:///quarry` names no host",
        ),
    ] {
        let err = PostgresMetastore::connect(uri).await.unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn uris_select_the_postgres_metastore() {
    assert!(is_postgres_uri("postgres://quarry@db/quarry"));
    assert!(is_postgres_uri("postgresql://quarry@db/quarry"));
    assert!(!is_postgres_uri("postgres-data/indexes"));
    assert!(!is_postgres_uri("s3://bucket/indexes"));
    assert_eq!(
        redact_uri("postgres://quarry:s3cret@db:5432/quarry?sslmode=disable"),
        "postgres://quarry:***@db:5432/quarry?sslmode=disable"
    );
    assert_eq!(
        redact_uri("postgres://quarry@db/quarry"),
        "postgres://quarry@db/quarry"
    );
}

#[tokio::test]
async fn bulk_ids_are_claimed_once_across_connections_and_expire() {
    let Some(url) = test_url() else { return };
    let (pg_config, schema) = fresh_schema(&url).await;
    // Two metastores: two nodes of a cluster, each with its own connections.
    let first = connect(&pg_config).await.unwrap();
    let second = connect(&pg_config).await.unwrap();
    let ids = |names: &[&str]| {
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
    };
    use BulkIdClaim::{Duplicate, InFlight, New};

    let claims = first
        .claim_bulk_ids("logs", &ids(&["a", "b", "a"]), 900, 120)
        .await
        .unwrap();
    assert_eq!(claims, [New, New, Duplicate]);
    // Not settled yet: another node's retry must wait.
    let claims = second
        .claim_bulk_ids("logs", &ids(&["a", "c"]), 900, 120)
        .await
        .unwrap();
    assert_eq!(claims, [InFlight, New]);
    first
        .settle_bulk_ids("logs", &ids(&["a"]), &ids(&["b"]))
        .await
        .unwrap();
    // Accepted ids are duplicates everywhere; a rejected one can be sent again.
    let claims = second
        .claim_bulk_ids("logs", &ids(&["a", "b"]), 900, 120)
        .await
        .unwrap();
    assert_eq!(claims, [Duplicate, New]);
    // Another index has ids of its own.
    let claims = second
        .claim_bulk_ids("other", &ids(&["a"]), 900, 120)
        .await
        .unwrap();
    assert_eq!(claims, [New]);
    // Past the window (and the pending timeout), every id is new again.
    let claims = first
        .claim_bulk_ids("logs", &ids(&["a", "c"]), -1, -1)
        .await
        .unwrap();
    assert_eq!(claims, [New, New]);
    first.forget_bulk_ids("logs").await.unwrap();
    let client = first.pool.get().await.unwrap();
    let left: i64 = client
        .query_one("SELECT count(*) FROM bulk_ids WHERE index_id = 'logs'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    drop(client);
    drop_schema(url, schema).await;
}
