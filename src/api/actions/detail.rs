//! Detail: an instance's settings and picture count.
//!
//! # Parameters
//! InstanceName (required).
//!
//! # Reply
//! Instance{Name, Region, ServiceType, Capacity, Qps, TotalCount, UtcCreate, UtcExpireTime}.

use serde_json::json;

use super::{instance, Fields};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;

/// Region reported for self-hosted instances.
const REGION: &str = "local";
/// Self-hosted instances do not expire: the far future, in milliseconds (the SDK parses a string).
const NEVER_EXPIRES_MS: i64 = 4_102_444_800_000;

/// Handles Detail.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let info = instance(state, params)?.info();
    let mut fields = Fields::new();
    fields.insert(
        "Instance".into(),
        json!({
            "Name": info.meta.name,
            "Region": REGION,
            "ServiceType": info.meta.service_type,
            "Capacity": info.meta.capacity,
            "Qps": info.meta.qps,
            "TotalCount": info.total_count,
            "UtcCreate": info.meta.created_ms.to_string(),
            "UtcExpireTime": NEVER_EXPIRES_MS.to_string(),
        }),
    );
    Ok(fields)
}
