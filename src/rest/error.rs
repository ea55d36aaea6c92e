use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use quarry_common::metastore::MetastoreError;
use quarry_indexer::IngestError;
use quarry_searcher::SearchError;

use crate::index_service::IndexServiceError;

/// Every error leaves as `{"error": "…"}` with a status that says whose fault it is.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The body of every native API error.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What was wrong, naming the field, value or resource at fault.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        let body = ErrorBody {
            error: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<MetastoreError> for ApiError {
    fn from(error: MetastoreError) -> Self {
        let status = match &error {
            MetastoreError::IndexNotFound(_) | MetastoreError::SplitsNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            MetastoreError::IndexAlreadyExists(_) => StatusCode::CONFLICT,
            MetastoreError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            MetastoreError::SplitsNotInExpectedState { .. }
            | MetastoreError::CheckpointConflict { .. } => StatusCode::CONFLICT,
            MetastoreError::Corrupt { .. }
            | MetastoreError::Storage(_)
            | MetastoreError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
            MetastoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError {
            status,
            message: error.to_string(),
        }
    }
}

impl From<IndexServiceError> for ApiError {
    fn from(error: IndexServiceError) -> Self {
        match error {
            IndexServiceError::Config(error) => ApiError::bad_request(error.to_string()),
            error @ IndexServiceError::InvalidDeleteQuery(_) => {
                ApiError::bad_request(error.to_string())
            }
            IndexServiceError::Metastore(error) => error.into(),
            IndexServiceError::Storage(quarry_common::storage::StorageError::InvalidUri {
                uri,
                reason,
            }) => ApiError::bad_request(format!("invalid index_uri `{uri}`: {reason}")),
            IndexServiceError::Storage(error) => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: error.to_string(),
            },
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let status = match &error {
            IngestError::IndexNotFound(_) => StatusCode::NOT_FOUND,
            IngestError::ShuttingDown | IngestError::ShardFailed(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            IngestError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: error.to_string(),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        let status = match &error {
            SearchError::IndexNotFound(_) => StatusCode::NOT_FOUND,
            SearchError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            SearchError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: error.to_string(),
        }
    }
}

pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/v1/_elastic") {
        return super::elastic::unknown_route(&uri);
    }
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no route for `{}`", uri.path()),
    }
    .into_response()
}
