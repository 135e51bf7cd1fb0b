//! Admin routes that manage instances while the server runs: list, create, show, delete.
//!
//! Same admission as the other admin routes ([`super::admin::admit`]): loopback peers
//! only and, once access keys exist, signed with a key not limited to instances. The
//! replies use the vendor's envelope; an instance is the [`InstanceSummary`] shape:
//!
//! ```text
//! POST /admin/instances                              -> {"Instances":[{Name, ServiceType, Qps,
//!                                                        Capacity, Extractor, Dimension,
//!                                                        LocalFeatures, Pictures, Whitened}]}
//! POST /admin/instance/create  InstanceName, ServiceType (name or 0..6, default product),
//!      Qps (0 = unlimited), Capacity (1000000), Extractor (builtin | onnx + Model:
//!      fused with the built-in descriptor at `DEFAULT_MODEL_COLOUR_WEIGHT`),
//!      LocalFeatures (true)                          -> {"Instance":{...}}
//! POST /admin/instance/show    InstanceName          -> {"Instance":{...}}
//! POST /admin/instance/spec    InstanceName          -> {"Spec":{...}} (`instance spec`)
//! POST /admin/instance/delete  InstanceName          -> {"Message":"deleted"}
//! ```
//!
//! With `serve --cluster`, create and delete go through the replicated catalog: every
//! node applies them, and the answer comes once this node did.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::admin::{on_blocking_pool, reply, Admitted};
use super::error::ApiError;
use super::params::Params;
use super::AppState;
use crate::api::VendorCode;
use crate::engine::{EngineError, ExtractorChoice, InstanceSpec, ServiceType};
use crate::replica::ReplicaError;

/// Default capacity of an instance created through the admin route.
pub const DEFAULT_CAPACITY: u64 = 1_000_000;

/// `POST /admin/instances`: every instance with its settings and counts.
pub async fn list(State(state): State<AppState>, _: Admitted) -> Response {
    let result = async {
        let rows: Vec<_> = state
            .engine
            .instances()
            .iter()
            .map(|i| i.summary())
            .collect();
        Ok(json!({ "Instances": rows }))
    }
    .await;
    reply(result)
}

/// The new instance's settings from the request's parameters.
fn spec_of(params: &Params) -> Result<(InstanceSpec, ExtractorChoice), ApiError> {
    let name = params.required("InstanceName")?.to_string();
    let service_type = match params.optional("ServiceType") {
        None => ServiceType::Product,
        Some(text) => ServiceType::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "ServiceType {text:?} is unknown: use product, generic, fabric, trademark, \
                 copyright, furniture, hardware or 0..6"
            ))
        })?,
    };
    let qps = match params.integer("Qps", VendorCode::InvalidParameter)? {
        None => 0,
        Some(q) => u32::try_from(q)
            .map_err(|_| ApiError::bad_request(format!("Qps must be 0 or more, not {q}")))?,
    };
    let capacity = match params.integer("Capacity", VendorCode::InvalidParameter)? {
        None => DEFAULT_CAPACITY,
        Some(c) if c > 0 => c as u64,
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "Capacity must be 1 or more, not {c}"
            )))
        }
    };
    let choice = match (
        params.optional("Extractor").unwrap_or("builtin"),
        params.optional("Model"),
    ) {
        ("builtin", None) => ExtractorChoice::Builtin,
        ("builtin", Some(_)) => {
            return Err(ApiError::bad_request("Model needs Extractor=onnx"));
        }
        ("onnx", Some(path)) => ExtractorChoice::model(path),
        ("onnx", None) => {
            return Err(ApiError::missing("Model"));
        }
        (other, _) => {
            return Err(ApiError::bad_request(format!(
                "Extractor {other:?} is unknown: use builtin or onnx"
            )))
        }
    };
    let spec = InstanceSpec {
        name,
        service_type,
        qps,
        capacity,
        local_features: params.boolean("LocalFeatures", crate::engine::DEFAULT_LOCAL_FEATURES)?,
    };
    Ok((spec, choice))
}

/// `POST /admin/instance/create`: creates an instance (a model is loaded and checked on
/// the blocking pool before anything is stored).
pub async fn create(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let (spec, choice) = spec_of(&params)?;
        let engine = state.engine.clone();
        let instance = match &state.config.replica {
            // Through the catalog: every node creates it.
            Some(replica) => replica
                .create_instance(&engine, spec, choice)
                .await
                .map_err(|e| match e {
                    ReplicaError::Engine(e) => creation_error(e),
                    e => e.into(),
                })?,
            None => on_blocking_pool(move || engine.create_instance_with(&spec, &choice))
                .await?
                .map_err(creation_error)?,
        };
        tracing::info!(instance = %instance.meta().name, "instance created");
        Ok(json!({ "Instance": instance.summary() }))
    }
    .await;
    reply(result)
}

/// A failed creation's answer: a bad model file is the operator's, not the server's.
fn creation_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Model { .. } => ApiError::bad_request(e.to_string()),
        e => e.into(),
    }
}

/// `POST /admin/instance/show?InstanceName=N`: one instance's settings and counts.
pub async fn show(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let instance = state.engine.instance(params.required("InstanceName")?)?;
        Ok(json!({ "Instance": instance.summary() }))
    }
    .await;
    reply(result)
}

/// `POST /admin/instance/spec?InstanceName=N`: the instance's extraction spec.
pub async fn spec(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let instance = state.engine.instance(params.required("InstanceName")?)?;
        Ok(json!({ "Spec": instance.spec()? }))
    }
    .await;
    reply(result)
}

/// `POST /admin/instance/delete?InstanceName=N`: deletes the instance and its pictures
/// for good (durable when answered; searches of other instances go on meanwhile).
pub async fn delete(State(state): State<AppState>, Admitted(params): Admitted) -> Response {
    let result = async {
        let name = params.required("InstanceName")?.to_string();
        let engine = state.engine.clone();
        match &state.config.replica {
            Some(replica) => replica.delete_instance(&engine, &name).await?,
            None => {
                let target = name.clone();
                on_blocking_pool(move || engine.delete_instance(&target)).await??
            }
        }
        tracing::info!(instance = %name, "instance deleted");
        Ok(json!({ "Message": "deleted" }))
    }
    .await;
    reply(result)
}
