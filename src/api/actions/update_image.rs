//! UpdateImage: change CustomContent and attributes of a stored picture (its picture,
//! category and region stay).
//!
//! # Parameters
//! InstanceName, ProductId, PicName (required); CustomContent, IntAttr..IntAttr4,
//! StrAttr..StrAttr4 (only those given change).
//!
//! # Reply
//! Message; PicNotExist when the picture is not stored.

use serde_json::json;

use super::{blocking, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::AppState;
use crate::api::VendorCode;

/// Handles UpdateImage.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let product_id = limits::name(params, "ProductId", VendorCode::InvalidProductId)?;
    let pic_name = limits::name(params, "PicName", VendorCode::InvalidPicName)?;
    let attributes = limits::attributes(params)?;
    match &state.config.replica {
        Some(replica) => {
            replica
                .update(&instance, product_id, pic_name, attributes, params.nonce())
                .await?
        }
        None => blocking(move || Ok(instance.update(&product_id, &pic_name, attributes)?)).await?,
    }
    let mut fields = Fields::new();
    fields.insert("Message".into(), json!("success"));
    Ok(fields)
}
