//! Scroll: `_search?scroll=1m` opens a context, `_search/scroll` pages through it,
//! `DELETE _search/scroll` frees it.
//!
//! A context is a `search_after` cursor over the splits the first page covered: splits are
//! immutable, so later pages see the same documents even while new splits are published,
//! which is the point-in-time view ES clients expect from a scroll.
//!
//! As in Elasticsearch, a context lives on the node that opened it, and dies with it. Its
//! id names that node (`{node_id}.{ULID}`), so a page asked of any other node (behind a
//! load balancer) is forwarded there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use quarry_searcher::{SearchRequest, SearchResult};
use serde_json::{json, Value};

use super::es_error;
use super::search::run_search;
use crate::auth::Principal;
use crate::rest::AppState;
use axum::Extension;

/// Elasticsearch's default `search.max_open_scroll_context`.
const MAX_OPEN_SCROLLS: usize = 500;
/// Longest keep-alive accepted (ES's `search.max_keep_alive` default).
const MAX_KEEP_ALIVE: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub(super) struct ScrollContext {
    pub index_expression: String,
    /// The next page's request: the original one with the cursor after the last hit.
    pub request: SearchRequest,
    pub options: super::fields::RenderOptions,
    expires_at: Instant,
    /// The API key that opened it: no other key may page or clear it.
    owner_key: Option<String>,
}

pub(crate) struct ScrollStore {
    /// This node's id: the owner part of the ids it hands out.
    node_id: String,
    contexts: Mutex<HashMap<String, ScrollContext>>,
}

/// Marks a scroll request one node forwarded to another, which must not forward it again.
const FORWARDED_HEADER: &str = "x-quarry-forwarded";

/// The node that holds a scroll context, from its id.
fn owner_of(scroll_id: &str) -> Option<&str> {
    scroll_id.rsplit_once('.').map(|(node_id, _)| node_id)
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ScrollError {
    TooManyOpen,
    Missing(String),
}

/// ES time units: `30s`, `1m`, `500ms`, `2h`, `1d`.
pub(super) fn parse_keep_alive(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("failed to parse keep-alive [{text}]: expected a number and a unit such as 1m")
    })?;
    let duration = match unit {
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        "h" => Duration::from_secs(number.saturating_mul(3_600)),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "micros" => Duration::from_micros(number),
        "nanos" => Duration::from_nanos(number),
        _ => {
            return Err(format!(
                "failed to parse keep-alive [{text}]: unknown unit [{unit}] (d, h, m, s, ms, micros or nanos)"
            ))
        }
    };
    if duration > MAX_KEEP_ALIVE {
        return Err(format!("keep-alive [{text}] is over the maximum of 1d"));
    }
    Ok(duration)
}

/// What a scroll keeps of a page: where it ended and which splits it covered.
pub(super) struct PageEnd {
    /// The last hit's `search_after` values; `None` for an empty page.
    cursor: Option<Vec<Value>>,
    split_ids: Vec<String>,
}

impl PageEnd {
    pub(super) fn of(result: &SearchResult) -> PageEnd {
        let cursor = result
            .hits
            .last()
            .and_then(quarry_searcher::SearchHit::search_after);
        PageEnd {
            cursor,
            split_ids: result.split_ids.clone(),
        }
    }

    /// The request that continues after this page; after an empty page the scroll is
    /// exhausted and the cursor stays where it was.
    pub(super) fn next_request(&self, request: &SearchRequest) -> SearchRequest {
        let mut next = request.clone();
        if let Some(cursor) = &self.cursor {
            next.search_after = Some(cursor.clone());
            next.start_offset = 0;
        }
        next
    }
}

impl ScrollStore {
    pub(crate) fn new(node_id: &str) -> ScrollStore {
        ScrollStore {
            node_id: node_id.to_string(),
            contexts: Mutex::new(HashMap::new()),
        }
    }

    fn purge_expired(contexts: &mut HashMap<String, ScrollContext>) {
        let now = Instant::now();
        contexts.retain(|_, context| context.expires_at > now);
    }

    /// Opens a context whose next page is `request`, restricted to the splits the first
    /// page covered.
    pub(super) fn open(
        &self,
        index_expression: &str,
        mut request: SearchRequest,
        first_page: &PageEnd,
        options: super::fields::RenderOptions,
        keep_alive: Duration,
        owner_key: Option<&str>,
    ) -> Result<String, ScrollError> {
        let snapshot: HashSet<String> = first_page.split_ids.iter().cloned().collect();
        request.only_splits = Some(Arc::new(snapshot));
        let mut contexts = self.contexts.lock().map_err(|_| ScrollError::TooManyOpen)?;
        Self::purge_expired(&mut contexts);
        if contexts.len() >= MAX_OPEN_SCROLLS {
            return Err(ScrollError::TooManyOpen);
        }
        let scroll_id = format!("{}.{}", self.node_id, ulid::Ulid::new());
        contexts.insert(
            scroll_id.clone(),
            ScrollContext {
                index_expression: index_expression.to_string(),
                request,
                options,
                expires_at: Instant::now() + keep_alive,
                owner_key: owner_key.map(str::to_string),
            },
        );
        Ok(scroll_id)
    }

    /// The context of `scroll_id`, its keep-alive renewed. Another key's context is
    /// missing, as if it did not exist.
    pub(super) fn get(
        &self,
        scroll_id: &str,
        keep_alive: Option<Duration>,
        key_id: Option<&str>,
    ) -> Result<ScrollContext, ScrollError> {
        let mut contexts = self
            .contexts
            .lock()
            .map_err(|_| ScrollError::Missing(scroll_id.to_string()))?;
        Self::purge_expired(&mut contexts);
        let context = contexts
            .get_mut(scroll_id)
            .filter(|context| context.owner_key.as_deref() == key_id)
            .ok_or_else(|| ScrollError::Missing(scroll_id.to_string()))?;
        if let Some(keep_alive) = keep_alive {
            context.expires_at = Instant::now() + keep_alive;
        }
        Ok(context.clone())
    }

    /// Moves the context's cursor past the page just returned.
    pub(super) fn advance(&self, scroll_id: &str, next: SearchRequest) {
        if let Ok(mut contexts) = self.contexts.lock() {
            if let Some(context) = contexts.get_mut(scroll_id) {
                context.request = next;
            }
        }
    }

    /// Frees the given contexts (all with `None`); returns how many existed.
    /// Only the contexts `key_id` opened.
    pub(super) fn clear(&self, scroll_ids: Option<&[String]>, key_id: Option<&str>) -> usize {
        let Ok(mut contexts) = self.contexts.lock() else {
            return 0;
        };
        Self::purge_expired(&mut contexts);
        let before = contexts.len();
        contexts.retain(|id, context| {
            let named = scroll_ids.is_none_or(|ids| ids.iter().any(|wanted| wanted == id));
            !(named && context.owner_key.as_deref() == key_id)
        });
        before - contexts.len()
    }
}

/// `scroll_id` and `scroll` from the JSON body or the query string.
fn scroll_params(
    params: &HashMap<String, String>,
    body: &Bytes,
) -> Result<(Vec<String>, Option<Duration>), String> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|error| format!("request body is not valid JSON: {error}"))?
    };
    let scroll_ids: Vec<String> = match (&body["scroll_id"], params.get("scroll_id")) {
        (Value::String(id), _) => id.split(',').map(str::to_string).collect(),
        (Value::Array(ids), _) => ids
            .iter()
            .map(|id| {
                id.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("scroll ids must be strings, got {id}"))
            })
            .collect::<Result<_, _>>()?,
        (Value::Null, Some(ids)) => ids.split(',').map(str::to_string).collect(),
        (Value::Null, None) => Vec::new(),
        (other, _) => {
            return Err(format!(
                "`scroll_id` must be a string or a list of strings, got {other}"
            ))
        }
    };
    let keep_alive = match (
        body["scroll"].as_str(),
        params.get("scroll").map(String::as_str),
    ) {
        (Some(text), _) | (None, Some(text)) => Some(parse_keep_alive(text)?),
        (None, None) => None,
    };
    Ok((scroll_ids, keep_alive))
}

/// The next page of a scroll.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/_elastic/_search/scroll",
    tag = "elasticsearch",
    params(("scroll_id" = Option<String>, Query, description = "The scroll's id, when the body has none."), ("scroll" = Option<String>, Query, pattern = "^[0-9]+(d|h|m|s|ms|micros|nanos)$", description = "A new keep-alive (`1m`).")),
    request_body(content = Option<super::schemas::EsScrollBody>),
    responses((status = 200, description = "The next hits.", body = super::schemas::EsSearchResponse)),
)]
pub(crate) async fn scroll(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    continue_scroll(&state, &principal, &params, &headers, &body, None).await
}

/// The old form, with the id in the path.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/_elastic/_search/scroll/{scroll_id}",
    tag = "elasticsearch",
    params(("scroll_id" = String, Path, description = "The scroll's id."), ("scroll" = Option<String>, Query, pattern = "^[0-9]+(d|h|m|s|ms|micros|nanos)$", description = "A new keep-alive (`1m`).")),
    responses((status = 200, description = "The next hits.", body = super::schemas::EsSearchResponse)),
)]
pub(crate) async fn scroll_by_path(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(scroll_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    continue_scroll(
        &state,
        &principal,
        &params,
        &headers,
        &body,
        Some(scroll_id),
    )
    .await
}

/// Sends a scroll request on to the node that holds the contexts, and its answer back.
/// The caller's credentials go along: the owner checks them as the caller's own node would.
async fn forward(
    state: &AppState,
    headers: &HeaderMap,
    owner: &str,
    method: reqwest::Method,
    body: Value,
) -> Result<Response, String> {
    let member = state
        .cluster
        .live_members()
        .into_iter()
        .find(|member| member.node_id == owner)
        .ok_or_else(|| format!("node {owner}, which held the context, is gone"))?;
    let response = state
        .transport
        .client_builder()
        .build()
        .map_err(|error| format!("node {owner}: {error}"))?
        .request(
            method,
            state
                .transport
                .url(&member.rest_address, "/api/v1/_elastic/_search/scroll"),
        )
        .header(FORWARDED_HEADER, "1")
        .headers(
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|value| reqwest::header::HeaderValue::from_bytes(value.as_bytes()).ok())
                .map(|value| {
                    let mut forwarded = reqwest::header::HeaderMap::new();
                    forwarded.insert(reqwest::header::AUTHORIZATION, value);
                    forwarded
                })
                .unwrap_or_default(),
        )
        .json(&body)
        .send()
        .await
        .map_err(|error| format!("node {owner}: {error}"))?;
    let status = StatusCode::from_u16(response.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = response
        .bytes()
        .await
        .map_err(|error| format!("node {owner}: {error}"))?;
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

async fn continue_scroll(
    state: &AppState,
    principal: &Principal,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    path_id: Option<String>,
) -> Response {
    let (body_ids, keep_alive) = match scroll_params(params, body) {
        Ok(parsed) => parsed,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    let Some(scroll_id) = path_id.or_else(|| body_ids.into_iter().next()) else {
        return es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: scrollId is missing;",
        );
    };
    let owner = owner_of(&scroll_id).unwrap_or_default();
    if !owner.is_empty()
        && owner != state.scrolls.node_id
        && !headers.contains_key(FORWARDED_HEADER)
    {
        let mut forwarded = json!({ "scroll_id": scroll_id });
        if let Some(keep_alive) = keep_alive {
            forwarded["scroll"] = json!(format!("{}ms", keep_alive.as_millis()));
        }
        return match forward(state, headers, owner, reqwest::Method::POST, forwarded).await {
            Ok(response) => response,
            Err(reason) => es_error(
                StatusCode::NOT_FOUND,
                "search_context_missing_exception",
                &format!("No search context found for id [{scroll_id}]: {reason}"),
            ),
        };
    }
    let context = match state
        .scrolls
        .get(&scroll_id, keep_alive, principal.key_id())
    {
        Ok(context) => context,
        Err(_) => {
            return es_error(
                StatusCode::NOT_FOUND,
                "search_context_missing_exception",
                &format!("No search context found for id [{scroll_id}]"),
            )
        }
    };
    let (mut rendered, page_end) = match run_search(
        state,
        principal,
        &context.index_expression,
        context.request.clone(),
        &context.options,
    )
    .await
    {
        Ok(searched) => searched,
        Err(response) => return response,
    };
    state
        .scrolls
        .advance(&scroll_id, page_end.next_request(&context.request));
    rendered.scroll_id = Some(scroll_id);
    Json(rendered).into_response()
}

/// Frees scrolls before their keep-alive ends.
#[utoipa::path(
    delete,
    path = "/api/v1/_elastic/_search/scroll",
    tag = "elasticsearch",
    params(("scroll_id" = Option<String>, Query, description = "Scroll ids, comma-separated, or `_all`.")),
    request_body(content = Option<super::schemas::EsClearScrollBody>),
    responses(
        (status = 200, description = "How many were freed.", body = super::schemas::EsClearScrollResponse),
        (status = 404, description = "None of them was open (Elasticsearch's answer).", body = super::schemas::EsClearScrollResponse),
    ),
)]
pub(crate) async fn clear_scroll(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match scroll_params(&params, &body) {
        Ok((scroll_ids, _)) => clear(&state, &principal, &headers, scroll_ids).await,
        Err(reason) => es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/_elastic/_search/scroll/{scroll_id}",
    tag = "elasticsearch",
    params(("scroll_id" = String, Path, description = "Scroll ids, comma-separated, or `_all`.")),
    responses(
        (status = 200, description = "How many were freed.", body = super::schemas::EsClearScrollResponse),
        (status = 404, description = "None of them was open (Elasticsearch's answer).", body = super::schemas::EsClearScrollResponse),
    ),
)]
pub(crate) async fn clear_scroll_by_path(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Path(scroll_ids): Path<String>,
) -> Response {
    clear(
        &state,
        &principal,
        &headers,
        scroll_ids.split(',').map(str::to_string).collect(),
    )
    .await
}

/// Frees contexts here and, unless this request was itself forwarded, on the nodes that
/// hold the others (every live node for `_all`). ES answers 404 when none of the contexts
/// existed, `succeeded` either way.
async fn clear(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    scroll_ids: Vec<String>,
) -> Response {
    let clear_all = scroll_ids.is_empty() || scroll_ids.iter().any(|id| id == "_all");
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    let mut elsewhere: HashMap<String, Vec<String>> = HashMap::new();
    if !forwarded {
        if clear_all {
            for member in state.cluster.live_members() {
                if member.node_id != state.scrolls.node_id {
                    elsewhere.insert(member.node_id, vec!["_all".to_string()]);
                }
            }
        } else {
            for scroll_id in &scroll_ids {
                match owner_of(scroll_id) {
                    Some(owner) if owner != state.scrolls.node_id => elsewhere
                        .entry(owner.to_string())
                        .or_default()
                        .push(scroll_id.clone()),
                    _ => {}
                }
            }
        }
    }
    let mut num_freed = if clear_all {
        state.scrolls.clear(None, principal.key_id())
    } else {
        state.scrolls.clear(Some(&scroll_ids), principal.key_id())
    };
    for (owner, ids) in elsewhere {
        // A node that is gone took its contexts with it: nothing to free there.
        if let Ok(response) = forward(
            state,
            headers,
            &owner,
            reqwest::Method::DELETE,
            json!({ "scroll_id": ids }),
        )
        .await
        {
            if let Ok(body) = axum::body::to_bytes(response.into_body(), 64 * 1024).await {
                if let Ok(answer) = serde_json::from_slice::<Value>(&body) {
                    num_freed += answer["num_freed"].as_u64().unwrap_or(0) as usize;
                }
            }
        }
    }
    let status = if num_freed == 0 && !clear_all {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"succeeded": true, "num_freed": num_freed})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_units() {
        assert_eq!(parse_keep_alive("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_keep_alive("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_keep_alive("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_keep_alive("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_keep_alive("1y")
            .unwrap_err()
            .contains("unknown unit [y]"));
        assert!(parse_keep_alive("m")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_keep_alive("2d").unwrap_err().contains("maximum"));
    }

    fn empty_result(split_ids: &[&str]) -> PageEnd {
        PageEnd::of(&SearchResult {
            num_hits: 0,
            hits: Vec::new(),
            aggregations: None,
            elapsed_time_micros: 0,
            errors: Vec::new(),
            num_splits: split_ids.len(),
            split_ids: split_ids.iter().map(|id| id.to_string()).collect(),
        })
    }

    #[test]
    fn contexts_snapshot_splits_expire_and_clear() {
        let store = ScrollStore::new("node-a");
        let id = store
            .open(
                "logs",
                SearchRequest::default(),
                &empty_result(&["a", "b"]),
                Default::default(),
                Duration::from_secs(60),
                Some("key-1"),
            )
            .unwrap();
        assert_eq!(owner_of(&id), Some("node-a"));
        let context = store.get(&id, None, Some("key-1")).unwrap();
        let only = context.request.only_splits.unwrap();
        assert_eq!(only.len(), 2);
        assert!(only.contains("a") && only.contains("b"));
        // Another key (or none) neither reads nor clears it: to them it does not exist.
        assert!(store.get(&id, None, Some("key-2")).is_err());
        assert!(store.get(&id, None, None).is_err());
        assert_eq!(store.clear(None, Some("key-2")), 0);
        assert_eq!(
            store.clear(Some(&[id.clone(), "unknown".to_string()]), Some("key-1")),
            1
        );
        assert_eq!(
            store.get(&id, None, Some("key-1")).unwrap_err(),
            ScrollError::Missing(id)
        );

        let expired = store
            .open(
                "logs",
                SearchRequest::default(),
                &empty_result(&[]),
                Default::default(),
                Duration::from_millis(0),
                None,
            )
            .unwrap();
        assert!(store.get(&expired, None, None).is_err());
    }
}
