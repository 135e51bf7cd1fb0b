//! SearchImageByPic: find the pictures most like a given one.
//!
//! # Parameters
//! InstanceName, PicContent (required); CategoryId, Crop (default true), Region, Num
//! (1..100, default 10), Start (0..499), Filter, DistinctProductId, ScoreThreshold.
//!
//! # Reply
//! Auctions[], Head{DocsReturn, DocsFound, SearchTime}, PicInfo, Msg.

use std::time::Instant;

use super::{blocking, elapsed_ms, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::response::{pic_info, scored_auction};
use crate::api::AppState;
use crate::engine::{SearchOutcome, ServiceType};
use serde_json::json;

/// Handles SearchImageByPic.
pub async fn handle(
    state: &AppState,
    params: &Params,
    started: Instant,
) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let picture = params.picture("PicContent", limits::MAX_PICTURE_BYTES)?;
    let crop = params.boolean("Crop", true)?;
    let region = limits::region(params)?;
    let query = limits::search_query(params)?;
    let service = instance.service_type();
    let outcome =
        blocking(move || Ok(instance.search_by_picture(&picture, crop, region, &query)?)).await?;
    Ok(search_reply(&outcome, service, started))
}

/// The reply of a search (shared with SearchImageByName).
pub(super) fn search_reply(
    outcome: &SearchOutcome,
    service: ServiceType,
    started: Instant,
) -> Fields {
    let auctions: Vec<_> = outcome.results.iter().map(scored_auction).collect();
    let mut fields = Fields::new();
    fields.insert(
        "Head".into(),
        json!({
            "DocsReturn": auctions.len(),
            "DocsFound": outcome.docs_found,
            "SearchTime": elapsed_ms(started),
        }),
    );
    fields.insert("PicInfo".into(), pic_info(&outcome.subject, service));
    fields.insert("Msg".into(), json!("success"));
    let mut ordered = Fields::new();
    ordered.insert("Auctions".into(), json!(auctions));
    ordered.extend(fields);
    ordered
}
