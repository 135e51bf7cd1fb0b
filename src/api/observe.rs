//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the engine is
//! open), `/metrics` (Prometheus text: requests by Action and code, latency histograms
//! per request and per engine stage, pictures and index bytes per instance, reloads and
//! rebuilds).

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;

/// The process-wide Prometheus recorder (metrics are global, as the facade is).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the recorder so that counters start at server start, not at the first scrape,
/// and starts its upkeep: a recorder installed without the exporter's own thread keeps
/// every histogram sample until the next scrape, so a server nobody scrapes would grow
/// by a few bytes per request forever.
pub fn install() {
    static UPKEEP: OnceLock<()> = OnceLock::new();
    if let Some(handle) = handle() {
        UPKEEP.get_or_init(|| {
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    handle.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started");
            }
        });
    }
}

/// Records one answered request.
pub fn record_request(action: &'static str, code: &str, elapsed: Duration) {
    metrics::counter!("imgsearch_requests_total", "action" => action, "code" => code.to_string())
        .increment(1);
    metrics::histogram!("imgsearch_request_seconds", "action" => action)
        .record(elapsed.as_secs_f64());
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: ready once the engine is open, which it is whenever the router runs,
/// and, in a cluster, once every instance's log is applied up to the allowed lag.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.config.replica.as_ref().and_then(|r| r.not_ready()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response();
    }
    let instances = state.engine.instances().len();
    (StatusCode::OK, format!("ready: {instances} instances\n")).into_response()
}

/// What the allocator holds: in use, freed but kept in its arenas (fragmentation), and
/// mapped on its own; tells a leak (in use grows) from memory not given back (free grows).
fn record_malloc() {
    if let Some(stats) = crate::allocator::stats() {
        metrics::gauge!("imgsearch_malloc_bytes", "kind" => "in_use").set(stats.in_use as f64);
        metrics::gauge!("imgsearch_malloc_bytes", "kind" => "free").set(stats.free as f64);
        metrics::gauge!("imgsearch_malloc_bytes", "kind" => "mmap").set(stats.mmap as f64);
    }
}

/// Applied sequence and lag of each instance's write log on this node.
fn record_replication(replica: &crate::replica::Replica) {
    for lag in replica.lags() {
        let name = lag.instance;
        metrics::gauge!("imgsearch_replica_applied_sequence", "instance" => name.clone())
            .set(lag.applied as f64);
        if let Some(behind) = lag.lag {
            metrics::gauge!("imgsearch_replica_lag", "instance" => name.clone()).set(behind as f64);
        }
        metrics::gauge!("imgsearch_replica_stopped", "instance" => name)
            .set(lag.stopped.is_some() as u8 as f64);
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    for instance in state.engine.instances() {
        let info = instance.info();
        let name = info.meta.name.clone();
        let snap = instance.snapshot();
        metrics::gauge!("imgsearch_pictures", "instance" => name.clone())
            .set(info.total_count as f64);
        let row_bytes = 8 + 4 * snap.dimension();
        metrics::gauge!("imgsearch_index_bytes", "instance" => name.clone())
            .set((snap.rows() * row_bytes) as f64);
        metrics::gauge!("imgsearch_index_rows", "instance" => name.clone()).set(snap.rows() as f64);
        metrics::gauge!("imgsearch_index_dead_rows", "instance" => name.clone())
            .set(snap.rows().saturating_sub(info.total_count as usize) as f64);
        metrics::gauge!("imgsearch_index_generation", "instance" => name)
            .set(snap.generation() as f64);
    }
    if let Some(replica) = &state.config.replica {
        record_replication(replica);
        crate::replica::bootstrap::record_metrics();
    }
    record_malloc();
    let store = state.engine.store_memory();
    metrics::gauge!("imgsearch_store_memtable_bytes").set(store.memtables as f64);
    metrics::gauge!("imgsearch_store_block_cache_bytes").set(store.block_cache as f64);
    metrics::gauge!("imgsearch_store_table_reader_bytes").set(store.table_readers as f64);
    match handle() {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available in this process\n",
        )
            .into_response(),
    }
}
