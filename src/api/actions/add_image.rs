//! AddImage: store a picture with its ProductId, PicName and attributes.
//!
//! # Parameters
//! InstanceName, ProductId, PicName, PicContent (required); CategoryId, Crop (default
//! true), Region, CustomContent, IntAttr..IntAttr4, StrAttr..StrAttr4.
//!
//! # Reply
//! Message, PicInfo{CategoryId, Region, AllCategories, MultiRegion}.

use serde_json::json;

use super::{blocking, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::response::pic_info;
use crate::api::AppState;
use crate::api::VendorCode;
use crate::engine::AddPicture;

/// Handles AddImage.
pub async fn handle(state: &AppState, params: &Params) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let add = AddPicture {
        product_id: limits::name(params, "ProductId", VendorCode::InvalidProductId)?,
        pic_name: limits::name(params, "PicName", VendorCode::InvalidPicName)?,
        picture: params.picture("PicContent", limits::MAX_PICTURE_BYTES)?,
        category_id: limits::category(params)?,
        crop: params.boolean("Crop", true)?,
        region: limits::region(params)?,
        attributes: limits::attributes(params)?,
    };
    let service = instance.service_type();
    let subject = match &state.config.replica {
        Some(replica) => replica.add(instance, add, params.nonce()).await?,
        None => blocking(move || Ok(instance.add(add)?)).await?,
    };
    let mut fields = Fields::new();
    fields.insert("Message".into(), json!("success"));
    fields.insert("PicInfo".into(), pic_info(&subject, service));
    Ok(fields)
}
