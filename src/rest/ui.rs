//! The web UI's routes: every path under `/ui` answers the same page (its script routes on
//! the path), and `/` sends browsers there.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::ApiError;

/// The paths the router serves the page at.
pub(crate) const PAGE_PATHS: [&str; 3] = ["/ui", "/ui/", "/ui/{*path}"];

pub(crate) async fn root() -> Redirect {
    Redirect::to("/ui/")
}

pub(crate) async fn page(headers: HeaderMap) -> Response {
    let page = match crate::ui::page() {
        Ok(page) => page,
        Err(error) => {
            tracing::error!("the web UI does not bundle: {error}");
            return ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("the web UI is broken in this build: {error}"),
            }
            .into_response();
        }
    };
    let mut response_headers = HeaderMap::new();
    let etag = HeaderValue::from_str(&page.etag).ok();
    if let Some(etag) = &etag {
        response_headers.insert(header::ETAG, etag.clone());
    }
    // Revalidated on every load, so a new build is never hidden behind a stale copy; an
    // unchanged page costs a 304.
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response_headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let matches_etag = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| candidate.trim() == page.etag || candidate.trim() == "*");
    if matches_etag {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    if let Ok(policy) = HeaderValue::from_str(&page.content_security_policy) {
        response_headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|parameter| {
                parameter
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        });
    if accepts_gzip {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (response_headers, page.gzipped.clone()).into_response()
    } else {
        (response_headers, page.html.clone()).into_response()
    }
}
