//! API keys in Elasticsearch's shape: an id and a random secret, sent as
//! `Authorization: ApiKey base64(id:secret)` (or Basic, id as user), carrying role
//! descriptors that say which indexes and cluster actions the key may use. The metastore
//! stores keys hashed; nodes check requests against the records (see the binary's `auth`).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pattern::wildcard_match;

/// One key as the metastore stores it: never the secret, only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret. Secrets are 128 random bits (or, for a bootstrap key, at
    /// least 32 characters chosen by the operator), too many to guess, so a slow hash adds
    /// nothing but latency to every request.
    pub key_hash: String,
    pub creation_ms: i64,
    /// Unix milliseconds after which the key is refused; `None` never expires.
    pub expiration_ms: Option<i64>,
    pub invalidated: bool,
    pub role_descriptors: BTreeMap<String, RoleDescriptor>,
    /// The privileges of the key that created this one, at creation: a key never does more
    /// than its creator could (Elasticsearch's `limited_by`). `None` for bootstrap keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<BTreeMap<String, RoleDescriptor>>,
    /// The id of the key that created this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// What one tenant may take of a node, so that it cannot starve the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<TenantLimits>,
}

/// Per-key limits, enforced by each node on the requests it serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Bytes of ingest and `_bulk` request bodies per second, as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_bytes_per_second: Option<u64>,
    /// Searches (search, count, msearch, scroll) running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_searches: Option<u32>,
}

/// What a role allows, as Elasticsearch writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDescriptor {
    #[serde(default)]
    pub cluster: Vec<String>,
    #[serde(default)]
    pub indices: Vec<IndicesPrivileges>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicesPrivileges {
    pub names: Vec<String>,
    pub privileges: Vec<String>,
    /// Elasticsearch clients send it; Quarry has no hidden indexes, so it changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_restricted_indices: Option<bool>,
}

/// What a request does to an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexAction {
    /// Search, count, scroll, msearch.
    Read,
    /// Describe, mapping, field capabilities, listing, resolving names.
    ViewMetadata,
    /// Ingest, `_bulk`, delete tasks.
    Write,
    /// Create and delete the index.
    Manage,
}

/// What a request does to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterAction {
    /// `/metrics`, cluster state and health.
    Monitor,
    Manage,
    /// Create, list and invalidate API keys.
    ManageSecurity,
}

impl IndexAction {
    fn granted_by(self, privilege: &str) -> bool {
        match privilege {
            "all" => true,
            "read" => matches!(self, IndexAction::Read | IndexAction::ViewMetadata),
            "view_index_metadata" => self == IndexAction::ViewMetadata,
            "write" | "index" | "create" | "create_doc" | "delete" => self == IndexAction::Write,
            "manage" => matches!(self, IndexAction::Manage | IndexAction::ViewMetadata),
            "create_index" | "delete_index" => self == IndexAction::Manage,
            _ => false,
        }
    }
}

const INDEX_PRIVILEGES: [&str; 11] = [
    "all",
    "read",
    "view_index_metadata",
    "write",
    "index",
    "create",
    "create_doc",
    "delete",
    "manage",
    "create_index",
    "delete_index",
];

impl ClusterAction {
    fn granted_by(self, privilege: &str) -> bool {
        match privilege {
            "all" => true,
            "monitor" => self == ClusterAction::Monitor,
            "manage" => matches!(self, ClusterAction::Monitor | ClusterAction::Manage),
            "manage_security" => self == ClusterAction::ManageSecurity,
            _ => false,
        }
    }
}

const CLUSTER_PRIVILEGES: [&str; 4] = ["all", "monitor", "manage", "manage_security"];

/// A role descriptor that is not understood, named so the caller can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RoleError(pub String);

impl RoleDescriptor {
    /// Refuses privileges Quarry does not know, instead of silently granting nothing.
    pub fn validate(&self, role_name: &str) -> Result<(), RoleError> {
        for privilege in &self.cluster {
            if !CLUSTER_PRIVILEGES.contains(&privilege.as_str()) {
                return Err(RoleError(format!(
                    "role `{role_name}`: unknown cluster privilege `{privilege}` (known: {})",
                    CLUSTER_PRIVILEGES.join(", ")
                )));
            }
        }
        for indices in &self.indices {
            if indices.names.is_empty() {
                return Err(RoleError(format!(
                    "role `{role_name}`: an `indices` entry needs at least one name or pattern"
                )));
            }
            for privilege in &indices.privileges {
                if !INDEX_PRIVILEGES.contains(&privilege.as_str()) {
                    return Err(RoleError(format!(
                        "role `{role_name}`: unknown index privilege `{privilege}` (known: {})",
                        INDEX_PRIVILEGES.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    fn allows_index(&self, action: IndexAction, index_id: &str) -> bool {
        self.indices.iter().any(|indices| {
            indices
                .privileges
                .iter()
                .any(|privilege| action.granted_by(privilege))
                && indices
                    .names
                    .iter()
                    .any(|pattern| wildcard_match(pattern, index_id))
        })
    }

    fn allows_cluster(&self, action: ClusterAction) -> bool {
        self.cluster
            .iter()
            .any(|privilege| action.granted_by(privilege))
    }
}

/// The roles of the first key of a cluster: everything.
pub fn superuser_roles() -> BTreeMap<String, RoleDescriptor> {
    BTreeMap::from([(
        "superuser".to_string(),
        RoleDescriptor {
            cluster: vec!["all".to_string()],
            indices: vec![IndicesPrivileges {
                names: vec!["*".to_string()],
                privileges: vec!["all".to_string()],
                allow_restricted_indices: None,
            }],
        },
    )])
}

fn any_role_allows(
    roles: &BTreeMap<String, RoleDescriptor>,
    allows: impl Fn(&RoleDescriptor) -> bool,
) -> bool {
    roles.values().any(allows)
}

impl ApiKeyRecord {
    /// Whether the key may do `action` to `index_id`: its own roles allow it, and so do
    /// its creator's.
    pub fn allows_index(&self, action: IndexAction, index_id: &str) -> bool {
        let allows = |role: &RoleDescriptor| role.allows_index(action, index_id);
        any_role_allows(&self.role_descriptors, allows)
            && self
                .limited_by
                .as_ref()
                .is_none_or(|limits| any_role_allows(limits, allows))
    }

    pub fn allows_cluster(&self, action: ClusterAction) -> bool {
        let allows = |role: &RoleDescriptor| role.allows_cluster(action);
        any_role_allows(&self.role_descriptors, allows)
            && self
                .limited_by
                .as_ref()
                .is_none_or(|limits| any_role_allows(limits, allows))
    }

    /// Whether the key is usable at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        !self.invalidated
            && self
                .expiration_ms
                .is_none_or(|expiration| now_ms < expiration)
    }

    /// Whether `secret` is this key's, compared in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        crate::cluster_secret::secrets_match(&self.key_hash, hash_secret(secret).as_bytes())
    }
}

/// Hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new key's id (120 random bits) and secret (128 random bits), URL-safe base64 like
/// Elasticsearch's.
pub fn generate_key() -> Result<(String, String), getrandom::Error> {
    let mut id = [0u8; 15];
    let mut secret = [0u8; 16];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Ok((engine.encode(id), engine.encode(secret)))
}

/// What clients put after `ApiKey `: base64 of `id:secret`.
pub fn encode_credential(id: &str, secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

/// Why an `Authorization` header was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("missing credentials: send `Authorization: ApiKey <base64 of id:api_key>` or Basic auth with the key's id and secret")]
    Missing,
    #[error("unsupported authorization scheme `{0}`: use `ApiKey` or `Basic`")]
    UnsupportedScheme(String),
    #[error("malformed credentials: expected base64 of `id:api_key`")]
    Malformed,
}

/// The key id and secret an `Authorization` header carries.
pub fn parse_authorization(header: Option<&str>) -> Result<(String, String), CredentialError> {
    let header = header.ok_or(CredentialError::Missing)?.trim();
    let (scheme, credential) = header.split_once(' ').ok_or(CredentialError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("apikey") && !scheme.eq_ignore_ascii_case("basic") {
        let shown: String = scheme.chars().take(20).collect();
        return Err(CredentialError::UnsupportedScheme(shown));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credential.trim())
        .map_err(|_| CredentialError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| CredentialError::Malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or(CredentialError::Malformed)?;
    if id.is_empty() || secret.is_empty() {
        return Err(CredentialError::Malformed);
    }
    Ok((id.to_string(), secret.to_string()))
}

/// The shortest secret an operator may choose for a bootstrap key.
pub const MIN_BOOTSTRAP_SECRET_LEN: usize = 32;

/// Reads a bootstrap key, `<id>:<secret>` with a secret of at least 32 characters.
pub fn parse_bootstrap_key(text: &str) -> Result<(String, String), RoleError> {
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| RoleError("the bootstrap API key must be `<id>:<key>`".to_string()))?;
    let id_is_plain = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_is_plain {
        return Err(RoleError(
            "the bootstrap API key's id must be 1 to 64 letters, digits, `-`, `_` or `.`"
                .to_string(),
        ));
    }
    if secret.chars().count() < MIN_BOOTSTRAP_SECRET_LEN {
        return Err(RoleError(format!(
            "the bootstrap API key's secret must be at least {MIN_BOOTSTRAP_SECRET_LEN} characters"
        )));
    }
    Ok((id.to_string(), secret.to_string()))
}

/// Elasticsearch's `expiration` (`30m`, `12h`, `7d`, `500ms`, `90s`) in milliseconds.
pub fn parse_expiration(text: &str) -> Result<i64, RoleError> {
    let invalid = || {
        RoleError(format!(
            "invalid expiration `{text}`: expected a positive number and a unit (`ms`, `s`, `m`, `h`, `d`), e.g. `7d`"
        ))
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let amount: i64 = text[..digits_end].parse().map_err(|_| invalid())?;
    let unit_ms = match &text[digits_end..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    amount
        .checked_mul(unit_ms)
        .filter(|millis| *millis > 0)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(roles: &str, limited_by: Option<&str>) -> ApiKeyRecord {
        ApiKeyRecord {
            id: "id".to_string(),
            name: "test".to_string(),
            key_hash: hash_secret("secret"),
            creation_ms: 0,
            expiration_ms: Some(1_000),
            invalidated: false,
            role_descriptors: serde_json::from_str(roles).unwrap(),
            limited_by: limited_by.map(|limits| serde_json::from_str(limits).unwrap()),
            creator: None,
            limits: None,
        }
    }

    #[test]
    fn privileges_follow_patterns_and_the_creator_s_limits() {
        let team_a = key(
            r#"{"a": {"cluster": ["monitor"], "indices": [{"names": ["team-a-*"], "privileges": ["read"]}]}}"#,
            None,
        );
        assert!(team_a.allows_index(IndexAction::Read, "team-a-logs"));
        assert!(team_a.allows_index(IndexAction::ViewMetadata, "team-a-logs"));
        assert!(!team_a.allows_index(IndexAction::Write, "team-a-logs"));
        assert!(!team_a.allows_index(IndexAction::Read, "team-ab-logs"));
        assert!(!team_a.allows_index(IndexAction::Read, "team-b-logs"));
        assert!(team_a.allows_cluster(ClusterAction::Monitor));
        assert!(!team_a.allows_cluster(ClusterAction::ManageSecurity));

        // A key made by a read-only key cannot write, whatever its own roles say.
        let derived = key(
            r#"{"w": {"indices": [{"names": ["*"], "privileges": ["all"]}]}}"#,
            Some(r#"{"a": {"indices": [{"names": ["team-a-*"], "privileges": ["read"]}]}}"#),
        );
        assert!(derived.allows_index(IndexAction::Read, "team-a-logs"));
        assert!(!derived.allows_index(IndexAction::Write, "team-a-logs"));
        assert!(!derived.allows_index(IndexAction::Read, "team-b-logs"));

        let admin = ApiKeyRecord {
            role_descriptors: superuser_roles(),
            ..team_a.clone()
        };
        assert!(admin.allows_index(IndexAction::Manage, "anything"));
        assert!(admin.allows_cluster(ClusterAction::ManageSecurity));
    }

    #[test]
    fn keys_expire_and_secrets_are_checked() {
        let record = key(r#"{}"#, None);
        assert!(record.is_active(999));
        assert!(!record.is_active(1_000));
        assert!(record.secret_matches("secret"));
        assert!(!record.secret_matches("secreT"));
        let (id, secret) = generate_key().unwrap();
        assert_eq!((id.len(), secret.len()), (20, 22));
        assert_ne!(generate_key().unwrap().1, secret);
    }

    #[test]
    fn authorization_headers() {
        let encoded = encode_credential("abc", "s3cret:with:colons");
        assert_eq!(
            parse_authorization(Some(&format!("ApiKey {encoded}"))).unwrap(),
            ("abc".to_string(), "s3cret:with:colons".to_string())
        );
        assert_eq!(
            parse_authorization(Some(&format!("Basic {encoded}"))).unwrap(),
            ("abc".to_string(), "s3cret:with:colons".to_string())
        );
        assert_eq!(parse_authorization(None), Err(CredentialError::Missing));
        assert!(matches!(
            parse_authorization(Some("Bearer xyz")),
            Err(CredentialError::UnsupportedScheme(_))
        ));
        assert_eq!(
            parse_authorization(Some("ApiKey !!!")),
            Err(CredentialError::Malformed)
        );
        let no_colon = base64::engine::general_purpose::STANDARD.encode("abc");
        assert_eq!(
            parse_authorization(Some(&format!("ApiKey {no_colon}"))),
            Err(CredentialError::Malformed)
        );
    }

    #[test]
    fn roles_bootstrap_keys_and_expirations_are_validated() {
        let unknown: RoleDescriptor =
            serde_json::from_str(r#"{"indices": [{"names": ["x"], "privileges": ["reed"]}]}"#)
                .unwrap();
        assert!(unknown
            .validate("r")
            .unwrap_err()
            .0
            .contains("unknown index privilege `reed`"));
        assert!(serde_json::from_str::<RoleDescriptor>(r#"{"run_as": ["x"]}"#).is_err());
        assert!(parse_bootstrap_key("admin:short").is_err());
        assert!(parse_bootstrap_key(&format!("bad id:{}", "k".repeat(32))).is_err());
        assert_eq!(
            parse_bootstrap_key(&format!("admin:{}", "k".repeat(32))).unwrap(),
            ("admin".to_string(), "k".repeat(32))
        );
        assert_eq!(parse_expiration("7d").unwrap(), 604_800_000);
        assert_eq!(parse_expiration("500ms").unwrap(), 500);
        assert!(parse_expiration("7 days").is_err());
        assert!(parse_expiration("0d").is_err());
        assert!(parse_expiration("99999999999999999999d").is_err());
    }
}
