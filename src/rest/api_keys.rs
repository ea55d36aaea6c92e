//! Creating, listing and invalidating API keys: Elasticsearch's `_security/api_key` under
//! `/api/v1/_elastic/` and the native `/api/v1/api-keys`, with the same bodies and answers.
//! The secret is returned once, at creation; only its hash is stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use quarry_common::api_keys::{
    encode_credential, generate_key, hash_secret, parse_expiration, superuser_roles, ApiKeyRecord,
    RoleDescriptor, TenantLimits,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::elastic::es_error;
use super::{ApiError, AppState};
use crate::auth::Principal;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKey {
    #[schema(pattern = "\\S")]
    name: String,
    /// A duration such as `1d`, `12h` or `30m`; without it the key never expires.
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    role_descriptors: BTreeMap<String, RoleDescriptor>,
    /// Quarry's own: what the key's tenant may take of each node.
    #[serde(default)]
    limits: Option<TenantLimits>,
    /// Kept by Elasticsearch for its users; Quarry accepts and ignores it.
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct KeyFilter {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvalidateApiKeys {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    name: Option<String>,
}

/// What creation answers; the secret is never shown again.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedApiKey {
    id: String,
    name: String,
    api_key: String,
    /// base64 of `id:api_key`, for `Authorization: ApiKey <encoded>`.
    encoded: String,
    /// Milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<i64>,
}

/// A key as listed: everything but its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyDescription {
    id: String,
    name: String,
    /// Milliseconds since the epoch.
    creation: i64,
    invalidated: bool,
    role_descriptors: BTreeMap<String, RoleDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<i64>,
    /// The creator's roles, which bound this key's (Elasticsearch's shape: a list of one).
    #[serde(skip_serializing_if = "Option::is_none")]
    limited_by: Option<Vec<BTreeMap<String, RoleDescriptor>>>,
    /// The id of the key that made this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    creator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<TenantLimits>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyList {
    api_keys: Vec<ApiKeyDescription>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct InvalidatedApiKeys {
    invalidated_api_keys: Vec<String>,
    previously_invalidated_api_keys: Vec<String>,
    error_count: u32,
}

/// A failure with its status, answered in the shape of the API it came through.
struct KeyError {
    status: StatusCode,
    message: String,
}

impl KeyError {
    fn bad_request(message: impl Into<String>) -> KeyError {
        KeyError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn internal(error: impl std::fmt::Display) -> KeyError {
        KeyError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: error.to_string(),
        }
    }

    fn native(self) -> Response {
        ApiError {
            status: self.status,
            message: self.message,
        }
        .into_response()
    }

    fn elastic(self) -> Response {
        let error_type = if self.status == StatusCode::FORBIDDEN {
            "security_exception"
        } else if self.status.is_client_error() {
            "illegal_argument_exception"
        } else {
            "exception"
        };
        es_error(self.status, error_type, &self.message)
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, KeyError> {
    serde_json::from_slice(body)
        .map_err(|error| KeyError::bad_request(format!("invalid {what} request: {error}")))
}

async fn create(
    state: &AppState,
    principal: &Principal,
    body: &[u8],
) -> Result<CreatedApiKey, KeyError> {
    let request: CreateApiKey = parse_body(body, "API key")?;
    if request.name.trim().is_empty() {
        return Err(KeyError::bad_request("an API key needs a `name`"));
    }
    for (role_name, role) in &request.role_descriptors {
        role.validate(role_name)
            .map_err(|error| KeyError::bad_request(error.0))?;
    }
    let now = crate::auth::now_ms();
    let expiration_ms = match &request.expiration {
        Some(text) => Some(
            parse_expiration(text)
                .map_err(|error| KeyError::bad_request(error.0))?
                .saturating_add(now),
        ),
        None => None,
    };
    // Without role descriptors a key does what its creator does, as in Elasticsearch; with
    // them, never more than its creator (`limited_by`).
    let (role_descriptors, limited_by, creator) = match principal {
        Principal::Unrestricted => {
            let roles = if request.role_descriptors.is_empty() {
                superuser_roles()
            } else {
                request.role_descriptors
            };
            (roles, None, None)
        }
        Principal::Key(creator) => {
            if creator.limited_by.is_some() {
                return Err(KeyError {
                    status: StatusCode::FORBIDDEN,
                    message: format!(
                        "API key id [{}] was itself made by a key: only keys without limits (the admin key and keys it makes with role descriptors) create keys",
                        creator.id
                    ),
                });
            }
            let roles = if request.role_descriptors.is_empty() {
                creator.role_descriptors.clone()
            } else {
                request.role_descriptors
            };
            (
                roles,
                Some(creator.role_descriptors.clone()),
                Some(creator.id.clone()),
            )
        }
    };
    let (id, secret) = generate_key().map_err(KeyError::internal)?;
    let record = ApiKeyRecord {
        id: id.clone(),
        name: request.name.clone(),
        key_hash: hash_secret(&secret),
        creation_ms: now,
        expiration_ms,
        invalidated: false,
        role_descriptors,
        limited_by,
        creator,
        limits: request.limits,
    };
    let created = state
        .keys
        .metastore()
        .create_api_key(record.clone())
        .await
        .map_err(KeyError::internal)?;
    if !created {
        return Err(KeyError::internal("a key with the same random id exists"));
    }
    state.keys.remember(record);
    Ok(CreatedApiKey {
        encoded: encode_credential(&id, &secret),
        id,
        name: request.name,
        api_key: secret,
        expiration: expiration_ms,
    })
}

fn describe(record: &ApiKeyRecord) -> ApiKeyDescription {
    ApiKeyDescription {
        id: record.id.clone(),
        name: record.name.clone(),
        creation: record.creation_ms,
        invalidated: record.invalidated,
        role_descriptors: record.role_descriptors.clone(),
        expiration: record.expiration_ms,
        limited_by: record.limited_by.clone().map(|roles| vec![roles]),
        creator: record.creator.clone(),
        limits: record.limits,
    }
}

async fn list(state: &AppState, filter: &KeyFilter) -> Result<ApiKeyList, KeyError> {
    let keys = state
        .keys
        .metastore()
        .list_api_keys()
        .await
        .map_err(KeyError::internal)?;
    let api_keys = keys
        .iter()
        .filter(|key| filter.id.as_ref().is_none_or(|id| &key.id == id))
        .filter(|key| filter.name.as_ref().is_none_or(|name| &key.name == name))
        .map(describe)
        .collect();
    Ok(ApiKeyList { api_keys })
}

async fn invalidate(
    state: &AppState,
    request: InvalidateApiKeys,
) -> Result<InvalidatedApiKeys, KeyError> {
    let metastore = state.keys.metastore();
    let mut ids = request.ids;
    ids.extend(request.id);
    if let Some(name) = &request.name {
        let keys = metastore
            .list_api_keys()
            .await
            .map_err(KeyError::internal)?;
        ids.extend(
            keys.into_iter()
                .filter(|key| &key.name == name)
                .map(|key| key.id),
        );
    }
    if ids.is_empty() {
        return Err(KeyError::bad_request(
            "name the keys to invalidate with `id`, `ids` or `name`",
        ));
    }
    let invalidated = metastore
        .invalidate_api_keys(&ids)
        .await
        .map_err(KeyError::internal)?;
    // This node refuses them at once; the others within their refresh interval.
    state.keys.refresh().await.map_err(KeyError::internal)?;
    let previously_invalidated_api_keys = ids
        .into_iter()
        .filter(|id| !invalidated.contains(id))
        .collect();
    Ok(InvalidatedApiKeys {
        invalidated_api_keys: invalidated,
        previously_invalidated_api_keys,
        error_count: 0,
    })
}

/// Which API a request came through: errors answer in its shape.
#[derive(Clone, Copy)]
enum Api {
    Native,
    Elastic,
}

fn respond(result: Result<impl Serialize, KeyError>, api: Api) -> Response {
    match (result, api) {
        (Ok(answer), _) => Json(answer).into_response(),
        (Err(error), Api::Native) => error.native(),
        (Err(error), Api::Elastic) => error.elastic(),
    }
}

/// Creates an API key; its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    request_body = CreateApiKey,
    responses((status = 200, description = "The new key.", body = CreatedApiKey)),
)]
pub(crate) async fn create_native(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Response {
    respond(create(&state, &principal, &body).await, Api::Native)
}

#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    params(KeyFilter),
    responses((status = 200, description = "The keys, without their secrets.", body = ApiKeyList)),
)]
pub(crate) async fn list_native(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<KeyFilter>,
) -> Response {
    respond(list(&state, &filter).await, Api::Native)
}

/// Revokes a key, on every node within seconds.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{key_id}",
    tag = "api-keys",
    params(("key_id" = String, Path, description = "The key's id.")),
    responses((status = 200, description = "What was revoked.", body = InvalidatedApiKeys)),
)]
pub(crate) async fn invalidate_native(
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
) -> Response {
    let request = InvalidateApiKeys {
        id: Some(key_id),
        ..Default::default()
    };
    respond(invalidate(&state, request).await, Api::Native)
}

#[utoipa::path(
    method(post, put),
    path = "/api/v1/_elastic/_security/api_key",
    tag = "elasticsearch",
    request_body = CreateApiKey,
    responses((status = 200, description = "The new key.", body = CreatedApiKey)),
)]
pub(crate) async fn create_elastic(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Response {
    respond(create(&state, &principal, &body).await, Api::Elastic)
}

#[utoipa::path(
    get,
    path = "/api/v1/_elastic/_security/api_key",
    tag = "elasticsearch",
    params(KeyFilter),
    responses((status = 200, description = "The keys, without their secrets.", body = ApiKeyList)),
)]
pub(crate) async fn list_elastic(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<KeyFilter>,
) -> Response {
    respond(list(&state, &filter).await, Api::Elastic)
}

#[utoipa::path(
    delete,
    path = "/api/v1/_elastic/_security/api_key",
    tag = "elasticsearch",
    request_body = InvalidateApiKeys,
    responses((status = 200, description = "What was revoked.", body = InvalidatedApiKeys)),
)]
pub(crate) async fn invalidate_elastic(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Response {
    let result = match parse_body::<InvalidateApiKeys>(&body, "invalidate API key") {
        Ok(request) => invalidate(&state, request).await,
        Err(error) => Err(error),
    };
    respond(result, Api::Elastic)
}

/// Elasticsearch's `_security/_authenticate`: who the credentials are.
/// Who the credential is, as Elasticsearch answers it.
#[utoipa::path(
    get,
    path = "/api/v1/_elastic/_security/_authenticate",
    tag = "elasticsearch",
    responses((status = 200, description = "The caller.", body = Object)),
)]
pub(crate) async fn authenticate_elastic(Extension(principal): Extension<Principal>) -> Response {
    match principal {
        Principal::Unrestricted => Json(json!({
            "username": "anonymous",
            "roles": ["superuser"],
            "authentication_type": "anonymous",
            "enabled": true,
        }))
        .into_response(),
        Principal::Key(key) => Json(json!({
            "username": key.name,
            "roles": key.role_descriptors.keys().collect::<Vec<_>>(),
            "api_key": {"id": key.id, "name": key.name},
            "authentication_type": "api_key",
            "enabled": true,
        }))
        .into_response(),
    }
}
