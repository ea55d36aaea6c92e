//! The first credential of a cluster. With authentication on, a node whose metastore
//! holds no usable admin key creates one: the operator's (`QUARRY_BOOTSTRAP_API_KEY` or
//! `auth.bootstrap_api_key`, known in advance to scripts), or a random one printed once to
//! the log, as Elasticsearch does at its first start.

use quarry_common::api_keys::{
    encode_credential, generate_key, hash_secret, parse_bootstrap_key, superuser_roles,
    ApiKeyRecord,
};
use quarry_common::metastore::Metastore;
use tracing::{info, warn};

use super::key_store::now_ms;

pub(crate) async fn bootstrap_admin_key(
    metastore: &dyn Metastore,
    bootstrap_key: Option<&str>,
) -> anyhow::Result<()> {
    let admin = |id: String, secret: &str, name: &str| ApiKeyRecord {
        id,
        name: name.to_string(),
        key_hash: hash_secret(secret),
        creation_ms: now_ms(),
        expiration_ms: None,
        invalidated: false,
        role_descriptors: superuser_roles(),
        limited_by: None,
        creator: None,
        limits: None,
    };
    if let Some(text) = bootstrap_key {
        let (id, secret) = parse_bootstrap_key(text)?;
        let created = metastore
            .create_api_key(admin(id.clone(), &secret, "bootstrap"))
            .await?;
        if created {
            info!(id, "created the bootstrap admin API key");
        } else {
            let existing = metastore.list_api_keys().await?;
            let matches = existing
                .iter()
                .any(|key| key.id == id && key.secret_matches(&secret));
            if !matches {
                warn!(
                    id,
                    "an API key with the bootstrap key's id already exists with another secret: the bootstrap key is not usable"
                );
            }
        }
        return Ok(());
    }
    let existing = metastore.list_api_keys().await?;
    if existing.iter().any(|key| key.is_active(now_ms())) {
        return Ok(());
    }
    let (id, secret) = generate_key()?;
    metastore
        .create_api_key(admin(id.clone(), &secret, "elastic"))
        .await?;
    // Printed once, on purpose, to stdout as well as the log: it is the only way in.
    let message = format!(
        "\n---------------------------------------------------------------------\n\
         Authentication is on. The admin API key of this cluster (shown once):\n\
         \n  id:      {id}\n  api_key: {secret}\n  encoded: {}\n\n\
         Send it as `Authorization: ApiKey <encoded>`, then create keys for\n\
         users with POST /api/v1/api-keys and keep this one safe.\n\
         ---------------------------------------------------------------------",
        encode_credential(&id, &secret)
    );
    println!("{message}");
    info!(id, "created the first admin API key (printed above)");
    Ok(())
}
