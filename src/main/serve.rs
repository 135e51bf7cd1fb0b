//! The `serve` command's composition root: opens (or first bootstraps) the data
//! directory, applies the server settings to the engine, joins the cluster when asked,
//! starts the snapshot uploads and runs the HTTP API until SIGTERM or Ctrl-C. It lives
//! apart from the argument parsing because it is the one place that wires every layer.

use std::sync::Arc;

use anyhow::{bail, Context};
use imgsearch::config::{ServeConfig, PID_FILE};
use imgsearch::engine::{Engine, EngineError};

/// Runs the server with `config` until it is asked to stop.
pub fn serve(config: ServeConfig) -> anyhow::Result<()> {
    imgsearch::allocator::configure();
    let access_keys = config.access_keys()?;
    if access_keys.is_empty() {
        if !config.listen.ip().is_loopback() {
            bail!(
                "no access keys are configured, so the API would be open to anyone: refusing to listen on {}. \
                 Configure --access-key-id/--access-key-secret (or [[access_keys]] in --config), or listen on 127.0.0.1",
                config.listen
            );
        }
        tracing::warn!("no access keys configured: the API is open, on a loopback address only");
    } else {
        tracing::info!(keys = access_keys.len(), "requests must be signed");
    }
    // A certificate or key that cannot serve stops the start before anything is opened.
    let tls = match config.tls_files()? {
        Some((cert, key)) => Some(imgsearch::api::tls::TlsConfig::load(cert, key)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let options = config.snapshot_options();
        let store = imgsearch::replica::bootstrap::prepare(&options, imgsearch::offline::restore_moving);
        let store = store.await?;
        let engine = {
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || {
                let engine = Engine::open(&dir)?;
                engine.ensure_default_instance()?;
                Ok::<_, EngineError>(engine)
            })
            .await??
        };
        let engine = Arc::new(engine);
        engine.set_buckets(config.buckets.clone())?;
        engine.set_thumbnail_size(config.thumbnail_size);
        engine.set_scan_mode(config.scan);
        engine.set_batch_window(std::time::Duration::from_micros(config.batch_window_us));
        engine.set_compaction(config.compaction());
        engine.set_scene_proposals(config.scene_proposals);
        engine.set_reciprocal_rerank(config.reciprocal_rerank);
        // Replicas would each fit their own whitening, at their own moment.
        engine.set_fit_within_products(config.fit_within_products && config.cluster.is_none());
        imgsearch::allocator::start_trimming(imgsearch::allocator::TRIM_EVERY);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let pid_file = data_dir.join(PID_FILE);
        std::fs::write(&pid_file, std::process::id().to_string())?;
        let addr = listener.local_addr()?;
        // After the pid file: a client that finds the address also finds a live pid.
        let addr_file =
            imgsearch::client::discovery::write_addr_file(&data_dir, config.scheme(), addr)?;
        tracing::info!(%addr, url = %format_args!("{}://{addr}", config.scheme()), data_dir = %data_dir.display(), "imgsearch serving");
        tokio::spawn(reload_on_sighup(engine.clone()));
        let replica = match &config.cluster {
            Some(urls) => {
                let cluster = imgsearch::replica::ClusterConfig {
                    urls: urls.split(',').map(|u| u.trim().to_string()).collect(),
                    node_id: config.node_id.clone().unwrap_or_else(|| addr.to_string()),
                    max_lag: config.cluster_max_lag,
                    rebootstrap: store.clone().map(|store| imgsearch::replica::Rebootstrap {
                        store,
                        restore: restore_moving,
                    }),
                };
                Some(imgsearch::replica::Replica::start(engine.clone(), cluster).await?)
            }
            None => None,
        };
        let uploader = imgsearch::replica::snapshots::Uploader::start;
        let uploads = store.map(|s| uploader(s, engine.clone(), replica.clone(), &options));
        let api_config = imgsearch::api::ApiConfig {
            write_qps: config.write_qps,
            access_keys,
            tls,
            replica,
            uploads,
        };
        imgsearch::api::serve(engine.clone(), api_config, listener, shutdown_signal()).await?;
        let flushed = tokio::task::spawn_blocking(move || engine.flush()).await?;
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "flushing the store at stop failed; its logs replay at the next start");
        }
        let _ = std::fs::remove_file(&addr_file);
        let _ = std::fs::remove_file(&pid_file);
        tracing::info!("stopped");
        Ok(())
    })
}

/// `offline::restore_moving` as the replica layer takes it (it does not import `offline`).
fn restore_moving(
    from: &std::path::Path,
    to: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    imgsearch::offline::restore_moving(from, to)
        .map(drop)
        .map_err(Into::into)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down: finishing requests under way");
}

async fn reload_on_sighup(engine: Arc<Engine>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let engine = engine.clone();
        match tokio::task::spawn_blocking(move || engine.reload_all()).await {
            Ok(Ok(n)) => tracing::info!(instances = n, "reloaded indexes"),
            Ok(Err(e)) => tracing::error!(error = %e, "reload failed"),
            Err(e) => tracing::error!(error = %e, "reload task failed"),
        }
    }
}
