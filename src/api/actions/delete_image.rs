//! DeleteImage: remove one picture (ProductId + PicName), all of a product (ProductId),
//! or every picture a filter matches (IsDeleteByFilter=true with Filter).
//!
//! # Parameters
//! InstanceName (required); ProductId (required unless IsDeleteByFilter), PicName,
//! IsDeleteByFilter, Filter (at most 4096 characters).
//!
//! # Reply
//! Message, Data{PicNames[]} (the pictures removed; empty when none matched).

use serde_json::json;

use super::{blocking, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::AppState;
use crate::api::VendorCode;

/// Handles DeleteImage.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let removed = if params.boolean("IsDeleteByFilter", false)? {
        let filter = limits::filter(params, limits::MAX_DELETE_FILTER_CHARS)?
            .ok_or_else(|| ApiError::missing("Filter"))?;
        match &state.config.replica {
            // Validated above; every node parses the text again when it applies it.
            Some(replica) => {
                let text = params.required("Filter")?.to_string();
                replica
                    .delete_by_filter(&instance, text, params.nonce())
                    .await?
            }
            None => blocking(move || Ok(instance.delete_by_filter(&filter)?)).await?,
        }
    } else {
        let product_id = limits::name(params, "ProductId", VendorCode::InvalidProductId)?;
        let pic_name = match params.optional("PicName") {
            Some(_) => Some(limits::name(params, "PicName", VendorCode::InvalidPicName)?),
            None => None,
        };
        match &state.config.replica {
            Some(replica) => {
                replica
                    .delete(&instance, product_id, pic_name, params.nonce())
                    .await?
            }
            None => {
                blocking(move || Ok(instance.delete(&product_id, pic_name.as_deref())?)).await?
            }
        }
    };
    let mut fields = Fields::new();
    fields.insert("Message".into(), json!("success"));
    fields.insert("Data".into(), json!({ "PicNames": removed }));
    Ok(fields)
}
