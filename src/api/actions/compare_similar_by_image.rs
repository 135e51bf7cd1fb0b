//! CompareSimilarByImage: how alike two pictures are, 0..1.
//!
//! # Parameters
//! InstanceName, PrimaryPicContent, SecondaryPicContent (required).
//!
//! # Reply
//! Score, Msg.

use serde_json::json;

use super::{blocking, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::AppState;

/// Handles CompareSimilarByImage.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let primary = params.picture("PrimaryPicContent", limits::MAX_PICTURE_BYTES)?;
    let secondary = params.picture("SecondaryPicContent", limits::MAX_PICTURE_BYTES)?;
    let score = blocking(move || Ok(instance.compare(&primary, &secondary)?)).await?;
    let mut fields = Fields::new();
    fields.insert("Score".into(), json!(score));
    fields.insert("Msg".into(), json!("success"));
    Ok(fields)
}
