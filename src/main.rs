//! The `imgsearch` command: serve the API, manage instances, rebuild indexes offline.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use imgsearch::client::commands::{self, OnlineArgs, Target};
use imgsearch::config::{ConfigFile, LogFormat, ServeConfig, DEFAULT_DATA_DIR, PID_FILE};
use imgsearch::engine::{Engine, EngineError, InstanceSpec, ServiceType, WhiteningParams};

#[path = "main/serve.rs"]
mod serve;

/// Self-hosted image search that speaks the Alibaba Cloud Image Search API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format: text (default) or json (one object per line).
    #[arg(long, global = true, env = "IMGSEARCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    runtime: imgsearch::offline::RuntimeArgs,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run, like InstanceCommand below.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the API (POST / with Action=...) until SIGINT or SIGTERM; SIGHUP reloads indexes.
    Serve(ServeConfig),
    /// Create, list, show and delete instances (through the server running on the data
    /// directory, or offline when none runs).
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Rebuild or whiten an instance's index (through the running server, or offline).
    #[command(subcommand)]
    Index(IndexCommand),
    /// Add pictures in bulk from a folder, a CSV or an increment.meta file (through the
    /// server running on the data directory, or offline when none runs).
    Import(ImportArgs),
    /// Check that the store and the vector files agree (works beside a running server).
    Verify {
        /// Only this instance (default: every one).
        name: Option<String>,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Online snapshots of the data directory, and restoring one.
    #[command(subcommand)]
    Snapshot(imgsearch::offline::SnapshotCommand),
    /// Extract one part of a distributed ingest: pictures in (a .parquet or .csv part of
    /// a manifest, a folder, an increment.meta file), one Parquet part out, with the
    /// extractor and settings of `instance spec` (no data directory). Prints the part's
    /// manifest entry as one JSON line.
    Extract(imgsearch::offline::ExtractOptions),
    /// Write an instance's records as increment.meta lines (works beside a running server).
    Export {
        /// Instance name.
        name: String,
        /// File to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Instance to add the pictures to.
    name: String,
    /// A folder (ProductId = the folder holding each picture, or the file stem for
    /// pictures directly in it), a .csv (path,product_id[,pic_name,category_id,...]) or
    /// a .jsonl/.json/increment.meta file (OperationType ADD/DELETE lines).
    source: PathBuf,
    /// Detect the subject of each picture (where the source does not say).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    crop: bool,
    /// CategoryId of pictures for which the source gives none (default: predicted).
    #[arg(long)]
    category: Option<u32>,
    /// Worker threads (default: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Data directory.
    #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Concurrent AddImage requests when importing through a running server.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[command(flatten)]
    online: OnlineArgs,
}

// Parsed once per run: the size of the Create variant (model options) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum InstanceCommand {
    /// Create an instance.
    Create {
        /// Instance name: 1 to 20 letters, digits, '-' or '_'.
        name: String,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// product, generic, fabric, trademark, copyright, furniture, hardware (or 0..6).
        #[arg(long, default_value = "product")]
        service_type: String,
        /// Searches per second allowed; 0 = unlimited (default). A value emulates the
        /// vendor's per-instance tiers (10 for the smallest): searches above it get
        /// 403 DeniedRequest with x-acs-retry-after.
        #[arg(long, default_value_t = 0)]
        qps: u32,
        /// Pictures the instance may hold.
        #[arg(long, default_value_t = 1_000_000)]
        capacity: u64,
        #[command(flatten)]
        extractor: imgsearch::offline::ExtractorArgs,
        /// Keep local features (keypoints) of every picture and re-rank the search
        /// candidates the vector ranking does not settle with them: finds copies, crops
        /// and products pasted on scenes; ~9 KB stored and ~14 KB of memory more per
        /// picture, ~8 ms more CPU per add (see docs/quality.md). On by default.
        #[arg(long, default_value_t = imgsearch::engine::DEFAULT_LOCAL_FEATURES,
              action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        local_features: bool,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// List instances with their settings and picture counts.
    List {
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Show one instance's settings and picture count.
    Show {
        /// Instance name.
        name: String,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Print an instance's extraction spec (JSON: extractor, model SHA-256 and recipe,
    /// settings, spec id), what `imgsearch extract` needs to extract as it would.
    Spec {
        /// Instance name.
        name: String,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Delete an instance and every picture in it, for good.
    Delete {
        /// Instance name.
        name: String,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[command(flatten)]
        online: OnlineArgs,
    },
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Write a compacted index generation from the store (through the running server,
    /// or offline).
    Rebuild {
        /// Instance name.
        name: String,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Fit a PCA whitening on the instance's stored vectors (or remove it with --off),
    /// store it with the instance and rebuild the index through it (through the running
    /// server, POST /admin/whiten, or offline).
    Whiten {
        /// Instance name.
        name: String,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Components kept (default: all, no reduction).
        #[arg(long)]
        dims: Option<usize>,
        /// Regularisation: share of the mean eigenvalue added to every eigenvalue
        /// (default 0.1; 1 with --within-product).
        #[arg(long)]
        shrink: Option<f64>,
        /// Scaling exponent: 1 full whitening, 0.5 partial, 0 PCA rotation only (default
        /// 0.25; 1 with --within-product).
        #[arg(long)]
        power: Option<f64>,
        /// Fit on what varies between pictures of one product (each picture's difference
        /// from its product's mean) instead of on all pictures.
        #[arg(long)]
        within_product: bool,
        /// Remove the whitening: rows go back to the extractor's vectors.
        #[arg(long, conflicts_with_all = ["dims", "shrink", "power", "within_product"])]
        off: bool,
        #[command(flatten)]
        online: OnlineArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches)?;
    // The configuration file fills in whatever the command line left at its default.
    let mut log_format = cli.log_format;
    if let (Command::Serve(config), Some(serve)) =
        (&mut cli.command, matches.subcommand_matches("serve"))
    {
        if let Some(path) = &config.config {
            let file = ConfigFile::read(path)?;
            let explicit = |id: &str| {
                serve
                    .value_source(id)
                    .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue)
            };
            config.apply_file(&file, explicit);
            if matches.value_source("log_format") == Some(clap::parser::ValueSource::DefaultValue) {
                log_format = file.log_format.unwrap_or(log_format);
            }
        }
    }
    init_logging(log_format);
    cli.runtime.apply()?;
    match cli.command {
        Command::Serve(config) => serve::serve(config),
        Command::Instance(InstanceCommand::Create {
            name,
            data_dir,
            service_type,
            qps,
            capacity,
            extractor,
            local_features,
            online,
        }) => {
            let choice = extractor.choice()?;
            let Some(service_type) = ServiceType::parse(&service_type) else {
                bail!("unknown service type {service_type:?}: use product, generic, fabric, trademark, copyright, furniture or hardware");
            };
            let spec = InstanceSpec {
                name,
                service_type,
                qps,
                capacity,
                local_features,
            };
            let target = online.target(&data_dir)?;
            let created = commands::create(&target, &spec, &choice)?;
            println!(
                "created instance {} {} (extractor {}, {} dimensions{})",
                created.name,
                where_(&target),
                created.extractor,
                created.dimension,
                if created.local_features {
                    ", local features"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Command::Instance(InstanceCommand::List { data_dir, online }) => {
            let rows = commands::list(&online.target(&data_dir)?)?;
            print!("{}", imgsearch::engine::summary_table(&rows));
            Ok(())
        }
        Command::Instance(InstanceCommand::Show {
            name,
            data_dir,
            online,
        }) => {
            let row = commands::show(&online.target(&data_dir)?, &name)?;
            print!("{}", imgsearch::engine::summary_table(&[row]));
            Ok(())
        }
        Command::Instance(InstanceCommand::Spec {
            name,
            data_dir,
            online,
        }) => {
            let spec = commands::spec(&online.target(&data_dir)?, &name)?;
            println!("{}", spec.to_json());
            Ok(())
        }
        Command::Instance(InstanceCommand::Delete {
            name,
            data_dir,
            online,
        }) => {
            let target = online.target(&data_dir)?;
            commands::delete(&target, &name)?;
            println!("deleted instance {name} {}", where_(&target));
            Ok(())
        }
        Command::Index(IndexCommand::Rebuild {
            name,
            data_dir,
            online,
        }) => match online.target(&data_dir)? {
            Target::Online(client) => {
                let generation = commands::rebuild_online(&client, &name)?;
                println!(
                    "the server at {} wrote generation {generation} of instance {name}",
                    client.base()
                );
                Ok(())
            }
            Target::Offline(_) => {
                let generation = imgsearch::engine::rebuild_offline(&data_dir, &name)?;
                println!("wrote generation {generation} of instance {name}");
                notify_server(&data_dir)
            }
        },
        Command::Index(IndexCommand::Whiten {
            name,
            data_dir,
            dims,
            shrink,
            power,
            within_product,
            off,
            online,
        }) => {
            let base = if within_product {
                WhiteningParams::within_products()
            } else {
                WhiteningParams::default()
            };
            let params = (!off).then_some(WhiteningParams {
                dims,
                shrink: shrink.unwrap_or(base.shrink),
                power: power.unwrap_or(base.power),
                ..base
            });
            match online.target(&data_dir)? {
                Target::Online(client) => {
                    println!(
                        "{}",
                        commands::whiten_online(&client, &name, params.as_ref())?
                    );
                    Ok(())
                }
                Target::Offline(_) => whiten(&data_dir, &name, params.as_ref()),
            }
        }
        Command::Import(args) => import(args),
        Command::Snapshot(command) => Ok(imgsearch::offline::run_snapshot(command)?),
        Command::Verify { name, data_dir } => {
            let reports = imgsearch::offline::verify(&data_dir, name.as_deref())?;
            for report in &reports {
                print!("{report}");
            }
            let failed = reports.iter().filter(|r| !r.ok()).count();
            if failed > 0 {
                bail!(
                    "{failed} of {} instance(s) disagree with the store",
                    reports.len()
                );
            }
            Ok(())
        }
        Command::Extract(options) => {
            let summary = imgsearch::offline::extract(&options)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Export {
            name,
            output,
            data_dir,
        } => {
            let count = imgsearch::offline::export(&data_dir, &name, output.as_deref())?;
            eprintln!("exported {count} pictures of instance {name}");
            Ok(())
        }
    }
}

/// Where an administration command ran, for its message.
fn where_(target: &Target) -> String {
    match target {
        Target::Online(client) => format!("on the server at {}", client.base()),
        Target::Offline(dir) => format!("in {}", dir.display()),
    }
}

/// `imgsearch index whiten`: the store must be free (refused clearly while a server runs).
fn whiten(data_dir: &Path, name: &str, params: Option<&WhiteningParams>) -> anyhow::Result<()> {
    let engine = match Engine::open_existing(data_dir) {
        Ok(engine) => engine,
        Err(EngineError::Store(imgsearch::store::StoreError::Locked(_))) => bail!(
            "the data directory {} is in use (a server is running on it): stop the server, \
             or ask it to do this with POST /admin/whiten?InstanceName={name} (Dims, Shrink, Power, WithinProduct, Off)",
            data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let instance = engine.instance(name)?;
    let started = std::time::Instant::now();
    let outcome = instance.whiten(params)?;
    match params {
        Some(p) => println!(
            "whitened instance {name}{}: fitted on {} pictures, {} → {} dimensions ({:.1} % of the variance), shrink {}, power {}; wrote generation {} in {:.1} s",
            if p.within_product { " within products" } else { "" },
            outcome.fitted_on,
            instance.meta().dimension,
            outcome.dimension,
            outcome.kept_variance * 100.0,
            p.shrink,
            p.power,
            outcome.generation,
            started.elapsed().as_secs_f64()
        ),
        None => println!(
            "removed the whitening of instance {name}: {} dimensions; wrote generation {}",
            outcome.dimension, outcome.generation
        ),
    }
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let options = imgsearch::offline::ImportOptions {
        crop: args.crop,
        category: args.category,
        threads: args.threads,
    };
    let summary = match args.online.target(&args.data_dir)? {
        Target::Online(client) => imgsearch::offline::import_online(
            &client,
            &args.name,
            &args.source,
            &options,
            args.connections,
        )?,
        Target::Offline(dir) => {
            imgsearch::offline::import(&dir, &args.name, &args.source, &options)?
        }
    };
    print!("{summary}");
    if !summary.imported_anything() {
        bail!("nothing was imported from {}", args.source.display());
    }
    Ok(())
}

/// Logs to stderr as text (colours on a terminal) or JSON lines; `RUST_LOG` filters.
fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// Sends SIGHUP to the server recorded in the data directory's pid file, if it runs.
fn notify_server(data_dir: &Path) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(data_dir.join(PID_FILE)) else {
        println!(
            "no server is running on {}: it will load the new generation when it starts",
            data_dir.display()
        );
        return Ok(());
    };
    let pid: i32 = text.trim().parse().context("damaged pid file")?;
    // SAFETY: kill(2) with a pid and a signal number has no memory effects.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) } == 0;
    if sent {
        println!("asked the server (pid {pid}) to reload");
    } else {
        println!(
            "the server of pid {pid} is not running: the new generation loads at its next start"
        );
    }
    Ok(())
}
