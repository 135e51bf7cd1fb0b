//! The one error table: every failure becomes a vendor error code and HTTP status here.

use axum::http::StatusCode;

use crate::api::VendorCode;
use crate::auth::AuthError;
use crate::engine::{EngineError, SnapshotError};
use crate::filter::FilterError;
use crate::store::StoreError;
use crate::vision::VisionError;

/// A failed request as the vendor reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Vendor error code (e.g. `InvalidPicContent`).
    pub code: VendorCode,
    /// What went wrong and what to fix.
    pub message: String,
    /// For throttling: how long the client should wait (sent as `x-acs-retry-after`).
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error with a code and status.
    pub fn new(status: StatusCode, code: VendorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with a specific code.
    pub fn invalid(code: VendorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::invalid(VendorCode::BadRequest, message)
    }

    /// 400 MissingParameter.
    pub fn missing(name: &str) -> Self {
        Self::invalid(
            VendorCode::MissingParameter,
            format!("the parameter {name} is required"),
        )
    }

    /// 400 BadRequest for a parameter given twice with different values.
    pub fn duplicated(name: &str) -> Self {
        Self::bad_request(format!(
            "the parameter {name} is given more than once with different values"
        ))
    }

    /// 400 for a body over the limit (the picture is what makes bodies large).
    pub fn body_too_large(limit: usize) -> Self {
        Self::invalid(
            VendorCode::InvalidPicContent,
            format!(
                "the request body is larger than {} MB, more than a 4 MB picture takes in any \
                 encoding; send a picture of at most 4 MB",
                limit / (1024 * 1024)
            ),
        )
    }

    /// 404 InvalidApi.NotFound for an unknown path or Action.
    pub fn api_not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            VendorCode::InvalidApiNotFound,
            format!("{what} is not an API of this server"),
        )
    }

    /// 403 DeniedRequest: the instance's rate limit is exceeded.
    pub fn throttled(instance: &str, qps: u32, wait: std::time::Duration) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            VendorCode::DeniedRequest,
            format!("instance {instance} allows {qps} requests per second of this kind; retry after {} ms", wait.as_millis()),
        );
        e.retry_after = Some(wait);
        e
    }

    /// 400 UnsupportedOperationType: a write that only this node would apply, refused
    /// in a cluster, with what to do `instead`.
    pub fn local_only(what: &str, instead: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            VendorCode::UnsupportedOperationType,
            format!("{what} would change this node only, so a cluster node (serve --cluster) refuses it: {instead}"),
        )
    }

    /// 500 InternalError (details are logged, not sent).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            VendorCode::InternalError,
            message,
        )
    }
}

impl From<VisionError> for ApiError {
    fn from(e: VisionError) -> Self {
        let code = match &e {
            VisionError::TooLarge { .. } | VisionError::Corrupt(_) => VendorCode::InvalidPicContent,
            VisionError::UnsupportedFormat => VendorCode::UnsupportedPicFormat,
            VisionError::UnsupportedPixels { .. } => VendorCode::UnsupportedPicPixels,
            VisionError::IncorrectOrientation { .. } => VendorCode::IncorrectOrientation,
            VisionError::InvalidRegion(_) => VendorCode::InvalidRegion,
        };
        ApiError::invalid(code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::Missing | AuthError::MissingField(_) => {
                ApiError::invalid(VendorCode::MissingParameter, message)
            }
            AuthError::UnknownKey(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                VendorCode::InvalidAccessKeyIdNotFound,
                message,
            ),
            AuthError::SignatureMismatch | AuthError::BodyHashMismatch(_) => {
                ApiError::invalid(VendorCode::SignatureDoesNotMatch, message)
            }
            AuthError::Expired { .. } => {
                ApiError::invalid(VendorCode::InvalidTimeStampExpired, message)
            }
            AuthError::NonceUsed(_) => ApiError::invalid(VendorCode::SignatureNonceUsed, message),
            AuthError::Malformed(_) => ApiError::bad_request(message),
            AuthError::Forbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, VendorCode::NoPermission, message)
            }
            AuthError::ReplayCacheFull => {
                let mut e =
                    ApiError::new(StatusCode::FORBIDDEN, VendorCode::DeniedRequest, message);
                e.retry_after = Some(std::time::Duration::from_secs(1));
                e
            }
        }
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        ApiError::invalid(
            VendorCode::InvalidFilterClause,
            format!("Filter is invalid {e}"),
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InstanceNotFound(_) | EngineError::InvalidInstanceName(_) => {
                ApiError::invalid(VendorCode::InvalidInstance, e.to_string())
            }
            EngineError::OverQuota { .. } => {
                ApiError::invalid(VendorCode::InstanceOverQuota, e.to_string())
            }
            EngineError::PictureNotFound { .. } => {
                ApiError::invalid(VendorCode::PicNotExist, e.to_string())
            }
            EngineError::InvalidCategory(_) => {
                ApiError::invalid(VendorCode::InvalidCategory, e.to_string())
            }
            EngineError::Vision(v) => v.into(),
            EngineError::TaskAlreadyExists { .. } => ApiError::new(
                StatusCode::CONFLICT,
                VendorCode::ConsoleTaskAlreadyExist,
                e.to_string(),
            ),
            EngineError::Store(StoreError::InstanceExists(_)) => ApiError::new(
                StatusCode::CONFLICT,
                VendorCode::InstanceNameAlreadyExist,
                e.to_string(),
            ),
            EngineError::UnknownBucket { .. }
            | EngineError::InvalidTaskPath { .. }
            | EngineError::Manifest(_)
            | EngineError::RelativeManifestPath(_)
            | EngineError::Whitening(_) => ApiError::bad_request(e.to_string()),
            EngineError::ExtractorUnavailable { .. }
            | EngineError::ProjectionMismatch { .. }
            | EngineError::Model { .. }
            | EngineError::NoDataDir(_)
            | EngineError::InvalidBucket { .. }
            | EngineError::TaskStorage(_)
            | EngineError::WriteLog(_)
            | EngineError::BatchFailed(_)
            | EngineError::WriterGone
            | EngineError::Store(_)
            | EngineError::Index(_) => {
                tracing::error!(error = %e, "engine failure");
                ApiError::internal(format!("the search engine failed: {e}"))
            }
        }
    }
}

impl From<SnapshotError> for ApiError {
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Exists(_) | SnapshotError::NotEmpty(_) => {
                ApiError::bad_request(e.to_string())
            }
            SnapshotError::Engine(inner) => inner.into(),
            SnapshotError::Io { .. }
            | SnapshotError::Description { .. }
            | SnapshotError::Damaged { .. }
            | SnapshotError::Store(_)
            | SnapshotError::Index(_) => {
                tracing::error!(error = %e, "snapshot failure");
                ApiError::internal(format!("the snapshot failed: {e}"))
            }
        }
    }
}

impl From<crate::replica::ReplicaError> for ApiError {
    fn from(e: crate::replica::ReplicaError) -> Self {
        match e {
            crate::replica::ReplicaError::Engine(e) => e.into(),
            other => {
                tracing::error!(error = %other, "replicated write failed");
                ApiError::internal(format!("the replicated write failed: {other}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_codes_and_statuses() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                EngineError::InstanceNotFound("x".into()).into(),
                400,
                "InvalidInstance",
            ),
            (
                EngineError::PictureNotFound {
                    product_id: "p".into(),
                    pic_name: "n".into(),
                }
                .into(),
                400,
                "PicNotExist",
            ),
            (
                EngineError::InvalidCategory(5).into(),
                400,
                "InvalidCategory",
            ),
            (
                EngineError::OverQuota {
                    name: "x".into(),
                    capacity: 1,
                }
                .into(),
                400,
                "InstanceOverQuota",
            ),
            (
                VisionError::UnsupportedFormat.into(),
                400,
                "UnsupportedPicFormat",
            ),
            (
                VisionError::UnsupportedPixels {
                    width: 1,
                    height: 1,
                    min: 100,
                    max: 4096,
                }
                .into(),
                400,
                "UnsupportedPicPixels",
            ),
            (
                VisionError::IncorrectOrientation { orientation: 6 }.into(),
                400,
                "IncorrectOrientation",
            ),
            (
                VisionError::InvalidRegion("x".into()).into(),
                400,
                "InvalidRegion",
            ),
            (
                VisionError::TooLarge { bytes: 5, max: 4 }.into(),
                400,
                "InvalidPicContent",
            ),
            (
                EngineError::Store(StoreError::InstanceExists("q".into())).into(),
                409,
                "InstanceNameAlreadyExist",
            ),
            (
                ApiError::api_not_found("GET /x"),
                404,
                "InvalidApi.NotFound",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(
                (e.status.as_u16(), e.code.as_str()),
                (status, code),
                "{}",
                e.message
            );
            assert!(!e.message.is_empty());
        }
    }
}
