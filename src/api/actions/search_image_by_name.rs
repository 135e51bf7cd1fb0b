//! SearchImageByName: search with a stored picture's own vector.
//!
//! # Parameters
//! InstanceName, ProductId, PicName (required); CategoryId, Num, Start, Filter,
//! DistinctProductId, ScoreThreshold.
//!
//! # Reply
//! As SearchImageByPic; PicNotExist when the picture is not stored.

use std::time::Instant;

use super::search_image_by_pic::search_reply;
use super::{blocking, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::AppState;
use crate::api::VendorCode;

/// Handles SearchImageByName.
pub async fn handle(
    state: &AppState,
    params: &Params,
    started: Instant,
) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let product_id = limits::name(params, "ProductId", VendorCode::InvalidProductId)?;
    let pic_name = limits::name(params, "PicName", VendorCode::InvalidPicName)?;
    let query = limits::search_query(params)?;
    let service = instance.service_type();
    let outcome =
        blocking(move || Ok(instance.search_by_name(&product_id, &pic_name, &query)?)).await?;
    Ok(search_reply(&outcome, service, started))
}
