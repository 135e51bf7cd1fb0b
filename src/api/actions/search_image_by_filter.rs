//! SearchImageByFilter: the pictures whose attributes match a filter, oldest first.
//!
//! # Parameters
//! InstanceName, Filter (required); Num (1..100, default 10), Start (0..499).
//!
//! # Reply
//! Auctions[] (without Score), Head{DocsReturn, DocsFound, SearchTime}, Msg.

use std::time::Instant;

use serde_json::{json, Value};

use super::{blocking, elapsed_ms, instance, Fields};
use crate::api::error::ApiError;
use crate::api::limits;
use crate::api::params::Params;
use crate::api::response::auction;
use crate::api::AppState;

/// Handles SearchImageByFilter.
pub async fn handle(
    state: &AppState,
    params: &Params,
    started: Instant,
) -> Result<Fields, ApiError> {
    let instance = instance(state, params)?;
    let filter = limits::filter(params, limits::MAX_SEARCH_FILTER_CHARS)?
        .ok_or_else(|| ApiError::missing("Filter"))?;
    let (start, num) = limits::page(params)?;
    let outcome = blocking(move || Ok(instance.search_by_filter(&filter, start, num)?)).await?;
    let auctions: Vec<Value> = outcome
        .records
        .iter()
        .map(|r| Value::Object(auction(r)))
        .collect();
    let mut fields = Fields::new();
    fields.insert("Head".into(), json!({"DocsReturn": auctions.len(), "DocsFound": outcome.docs_found, "SearchTime": elapsed_ms(started)}));
    fields.insert("Msg".into(), json!("success"));
    let mut ordered = Fields::new();
    ordered.insert("Auctions".into(), json!(auctions));
    ordered.extend(fields);
    Ok(ordered)
}
