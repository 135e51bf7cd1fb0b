//! CheckImageExists: whether a (ProductId, PicName) is stored, with its attributes.
//!
//! # Parameters
//! InstanceName, ProductId, PicName (required).
//!
//! # Reply
//! Exists, Auctions (the stored picture's attributes, when it exists), Message.

use serde_json::{json, Value};

use super::{blocking, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::response::auction;
use crate::api::AppState;
use crate::api::VendorCode;

/// Handles CheckImageExists.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let product_id = limits::name(params, "ProductId", VendorCode::InvalidProductId)?;
    let pic_name = limits::name(params, "PicName", VendorCode::InvalidPicName)?;
    let record = blocking(move || Ok(instance.find(&product_id, &pic_name)?)).await?;
    let mut fields = Fields::new();
    fields.insert("Message".into(), json!("success"));
    fields.insert("Exists".into(), json!(record.is_some()));
    if let Some(record) = record {
        fields.insert("Auctions".into(), Value::Object(auction(&record)));
    }
    Ok(fields)
}
