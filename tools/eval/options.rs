//! The options every measuring mode shares (extractor, local features, scan modes,
//! whitening, `--limit`, `--defaults`) and the throw-away engine and instance they
//! configure.
//!
//! `--defaults` replaces the stage options with what a user gets today from
//! `imgsearch instance create NAME` + `imgsearch serve` + a SearchImageByPic without
//! optional parameters, read from the library (the serve settings are parsed from an
//! empty command line, so `IMGSEARCH_*` variables apply as they would to `serve`), so
//! the before/after of a change of defaults is one flag.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use imgsearch::config::ServeConfig;
use imgsearch::engine::{
    Engine, Instance, InstanceSpec, Reciprocal, ScanMode, SearchQuery, ServiceType,
    WhiteningParams, DEFAULT_RERANK_CANDIDATES, DEFAULT_VOTE_CANDIDATES,
};

/// Name of the evaluation instance.
pub const INSTANCE: &str = "eval";

#[derive(Args)]
pub struct RunOptions {
    /// Detect the subject (Crop) when adding and when searching.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub crop: bool,
    /// With Crop, also search busy scenes by windows (`SearchQuery::scene_windows`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub windows: bool,
    /// With Crop, also search busy scenes by segment proposals composited on white
    /// (`SearchQuery::scene_proposals`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub proposals: bool,
    /// Create the instance with local features: the first `--rerank-k` candidates of
    /// every search by picture are re-ranked by geometric verification.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub local_features: bool,
    /// Run every stage on every query (`SearchQuery::exhaustive`): no cascade, the
    /// before of the cascade's before/after.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub exhaustive: bool,
    /// Average query expansion (`SearchQuery::query_expansion`): an undecided
    /// single-view ranking is searched again with the mean of the query and its first K
    /// results' vectors (0: off).
    #[arg(long, default_value_t = 0)]
    pub query_expansion: usize,
    /// k-reciprocal re-ranking of undecided, unverified shortlists
    /// (`SearchQuery::reciprocal`): `off`, `default`, or `k1=K,k2=K,lambda=L,kept=N` (any of
    /// them); each `--reciprocal` is one setting, measured in turn on the same index
    /// (`copy` takes the first). Without it: the server's with `--defaults`, else off.
    #[arg(long, value_parser = checked_reciprocal)]
    pub reciprocal: Vec<String>,
    /// The product vote for the first result of undecided searches
    /// (`SearchQuery::keep_first` off): `--product-vote false` keeps the vector
    /// ranking's first; each value is measured in turn with every `--reciprocal`.
    #[arg(long, value_delimiter = ',', default_value = "true", action = clap::ArgAction::Append)]
    pub product_vote: Vec<bool>,
    /// Candidates re-ranked with local features.
    #[arg(long, default_value_t = imgsearch::engine::DEFAULT_RERANK_CANDIDATES)]
    pub rerank_k: usize,
    /// Pictures with most keypoint votes verified besides the vector candidates (local
    /// features; 0: none).
    #[arg(long, default_value_t = imgsearch::engine::DEFAULT_VOTE_CANDIDATES)]
    pub votes: usize,
    /// Write every query's ranking here (one line per query: its position, label, then
    /// `product:score` per result), for studying re-ranking rules offline; each measured
    /// setting appends its rankings after a `# label` line.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Use at most N pictures of each list, evenly spaced (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub extractor: imgsearch::offline::ExtractorArgs,
    #[command(flatten)]
    pub runtime: imgsearch::offline::RuntimeArgs,
    /// Keep the data directory here instead of a temporary one (it must not
    /// hold an `eval` instance yet).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Scan modes to evaluate, comma-separated (`f32`, `i8`, `f16`); every mode after
    /// the first also reports the overlap of its top 10 with the first mode's.
    #[arg(long, value_parser = imgsearch::config::scan_mode_parser(), value_delimiter = ',', default_value = "f32")]
    pub scan: Vec<ScanMode>,
    /// After indexing, fit a whitening on the indexed pictures and rebuild the index
    /// through it (`Instance::whiten`, as `imgsearch index whiten`), then measure; each
    /// `--whiten` is one setting, measured in turn on the same index: `off` (none), or
    /// `power=P,shrink=S,dims=N,within=true` (any of them; `default` for the defaults;
    /// `within=true` fits within products, with its own defaults). Kept with
    /// `--defaults` (`power=0` is the catalogue mean subtracted, nothing else), and then
    /// instead of the server's automatic whitening within products.
    #[arg(long)]
    pub whiten: Vec<String>,
    /// Run the configuration a user gets today from `instance create` + `serve` (scan
    /// mode, batch window, scene proposals, previews, local features, re-rank sizes,
    /// Crop as SearchImageByPic defaults it); overrides the stage options above and
    /// labels the result `defaults`. The extractor options still apply.
    #[arg(long)]
    pub defaults: bool,
    /// The `serve` settings `--defaults` applies to the engine (set by
    /// [`RunOptions::apply_defaults`]).
    #[arg(skip)]
    pub serve: Option<ServeConfig>,
}

/// `imgsearch serve` as parsed from an empty command line: its defaults.
#[derive(clap::Parser)]
struct ServeDefaults {
    #[command(flatten)]
    config: ServeConfig,
}

/// Crop of SearchImageByPic and AddImage when the request leaves it out (the API's
/// default, `params.boolean("Crop", true)`).
const API_CROP: bool = true;

impl RunOptions {
    /// With `--defaults`, replaces the stage options by today's defaults of
    /// `instance create`, `serve` and the search API.
    pub fn apply_defaults(&mut self) -> Result<()> {
        if !self.defaults {
            return Ok(());
        }
        let serve = <ServeDefaults as clap::Parser>::try_parse_from(["serve"])
            .context("reading the serve defaults")?
            .config;
        self.crop = API_CROP;
        self.windows = false;
        self.proposals = false;
        self.exhaustive = false;
        // `--query-expansion` is kept: the same defaults with expansion on top.
        // The engine's scene proposals are set from `serve` (`open_instance`).
        self.local_features = imgsearch::engine::DEFAULT_LOCAL_FEATURES;
        self.rerank_k = DEFAULT_RERANK_CANDIDATES;
        self.votes = DEFAULT_VOTE_CANDIDATES;
        self.scan = vec![serve.scan];
        // `--whiten` is kept: the same defaults on a whitened index.
        self.serve = Some(serve);
        Ok(())
    }

    /// The `--reciprocal` x `--product-vote` settings to measure in turn, each with its
    /// label.
    pub fn reciprocal_settings(&self) -> Result<Vec<(String, Reranking)>> {
        let reciprocal: Vec<(String, Option<Reciprocal>)> = if self.reciprocal.is_empty() {
            // `serve --reciprocal-rerank`'s default.
            let server = self
                .serve
                .as_ref()
                .filter(|serve| serve.reciprocal_rerank)
                .map(|_| Reciprocal::DEFAULT);
            vec![(String::new(), server)]
        } else {
            self.reciprocal
                .iter()
                .map(|spec| Ok((format!("reciprocal {spec}: "), reciprocal_setting(spec)?)))
                .collect::<Result<_>>()?
        };
        let labelled = self.product_vote.len() > 1;
        Ok(self
            .product_vote
            .iter()
            .flat_map(|&vote| {
                reciprocal.iter().map(move |(label, reciprocal)| {
                    let vote_label = if labelled {
                        format!("product vote {vote}: ")
                    } else {
                        String::new()
                    };
                    (
                        format!("{vote_label}{label}"),
                        Reranking {
                            reciprocal: *reciprocal,
                            keep_first: !vote,
                        },
                    )
                })
            })
            .collect())
    }

    /// What each search of this run asks: `num` results, the stage options, and
    /// the re-ranking of undecided searches as `reranking` says.
    pub fn search_query(&self, num: usize, reranking: Reranking) -> SearchQuery {
        SearchQuery {
            num,
            scene_windows: self.windows,
            scene_proposals: self.proposals,
            exhaustive: self.exhaustive,
            query_expansion: self.query_expansion,
            reciprocal: reranking.reciprocal,
            keep_first: reranking.keep_first,
            ..SearchQuery::default()
        }
    }

    /// How the result lines name this configuration.
    pub fn config_name(&self) -> &'static str {
        if self.defaults {
            "defaults"
        } else {
            "options"
        }
    }
}

/// How an undecided search is re-ranked in one measured setting.
#[derive(Debug, Clone, Copy)]
pub struct Reranking {
    /// k-reciprocal re-ranking (`None`: off).
    pub reciprocal: Option<Reciprocal>,
    /// `SearchQuery::keep_first`: no product vote.
    pub keep_first: bool,
}

/// A `--reciprocal` setting: `off`, `default` or `k1=K,k2=K,lambda=L,kept=N` (any of them,
/// the others from the default).
pub fn reciprocal_setting(spec: &str) -> Result<Option<Reciprocal>> {
    match spec {
        "off" => return Ok(None),
        "default" => return Ok(Some(Reciprocal::DEFAULT)),
        _ => {}
    }
    let mut settings = Reciprocal::DEFAULT;
    for part in spec.split(',') {
        let (key, value) = part.split_once('=').with_context(|| {
            format!("--reciprocal {spec}: expected off, default or k1=K,k2=K,lambda=L,kept=N")
        })?;
        match key {
            "k1" => settings.k1 = value.parse()?,
            "k2" => settings.k2 = value.parse()?,
            "lambda" => settings.lambda = value.parse()?,
            "kept" => settings.kept = value.parse()?,
            _ => bail!("--reciprocal {spec}: unknown setting {key}"),
        }
    }
    Ok(Some(settings))
}

/// `--reciprocal` checked when the command line is read, not after the index is built.
fn checked_reciprocal(spec: &str) -> std::result::Result<String, String> {
    reciprocal_setting(spec)
        .map(|_| spec.to_string())
        .map_err(|e| format!("{e:#}"))
}

/// A `--whiten` setting: `None` removes the whitening.
pub fn whiten_setting(spec: &str) -> Result<Option<WhiteningParams>> {
    let spec = spec.trim();
    if spec == "off" || spec == "none" {
        return Ok(None);
    }
    let within = spec.split(',').any(|p| p.replace(' ', "") == "within=true");
    let mut params = if within {
        WhiteningParams::within_products()
    } else {
        WhiteningParams::default()
    };
    for part in spec
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "default")
    {
        let Some((key, value)) = part.split_once('=') else {
            bail!("--whiten {spec:?}: expected off, default or key=value pairs");
        };
        match key.trim() {
            "power" => params.power = value.trim().parse()?,
            "shrink" => params.shrink = value.trim().parse()?,
            "dims" => params.dims = Some(value.trim().parse()?),
            "within" => params.within_product = value.trim().parse()?,
            other => {
                bail!("--whiten {spec:?}: unknown key {other:?} (power, shrink, dims, within)")
            }
        }
    }
    Ok(Some(params))
}

/// After the adds: the automatic whitening within products as the server fits it once
/// writes pause (with `--defaults`), or none when `--whiten` settings are measured
/// instead (so the server's thread does not fit one among them).
pub fn settle_within_fit(instance: &Instance, run: &RunOptions) -> Result<()> {
    if !run.whiten.is_empty() {
        instance.set_fit_within_products(false);
        return Ok(());
    }
    let started = Instant::now();
    if let Some(outcome) = instance.fit_within_products_if_due()? {
        println!(
            "whitened within products (as the server once writes pause): fitted on {} pictures, fit + rebuild {:.1} s",
            outcome.fitted_on,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Applies a `--whiten` setting to the instance (fit + rebuild) and says what it did.
pub fn apply_whitening(instance: &Instance, spec: &str) -> Result<String> {
    let setting = whiten_setting(spec)?;
    let started = Instant::now();
    let outcome = instance.whiten(setting.as_ref())?;
    let label = match setting {
        None => "whiten off".to_string(),
        Some(p) => format!(
            "whiten power={} shrink={} dims={} within={}",
            p.power, p.shrink, outcome.dimension, p.within_product
        ),
    };
    println!(
        "{label}: {} dimensions, fitted on {} pictures, {:.1} % of the variance kept, fit + rebuild {:.1} s",
        outcome.dimension,
        outcome.fitted_on,
        outcome.kept_variance * 100.0,
        started.elapsed().as_secs_f64()
    );
    Ok(label)
}

/// Removes the temporary data directory however the run ends.
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh engine (in `--data-dir` or a temporary directory removed on drop) holding the
/// empty evaluation instance, with the extractor the options ask for.
pub fn open_instance(
    run: &RunOptions,
    service_type: ServiceType,
    capacity: usize,
) -> Result<(Option<TempDir>, Engine, std::sync::Arc<Instance>)> {
    let (guard, data_dir) = match &run.data_dir {
        Some(d) => (None, d.clone()),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let d =
                std::env::temp_dir().join(format!("imgsearch-eval-{}-{nanos}", std::process::id()));
            (Some(TempDir(d.clone())), d)
        }
    };
    let engine = Engine::open(&data_dir).context("opening the engine")?;
    if let Some(serve) = &run.serve {
        // As `serve` sets them, before the instance is created so it inherits them.
        engine.set_thumbnail_size(serve.thumbnail_size);
        engine.set_scan_mode(serve.scan);
        engine.set_batch_window(std::time::Duration::from_micros(serve.batch_window_us));
        engine.set_compaction(serve.compaction());
        engine.set_scene_proposals(serve.scene_proposals);
        engine.set_fit_within_products(serve.fit_within_products);
    }
    let choice = run.extractor.choice()?;
    run.runtime.apply()?;
    let instance = engine.create_instance_with(
        &InstanceSpec {
            name: INSTANCE.into(),
            service_type,
            qps: 1000,
            capacity: capacity as u64 + 1,
            local_features: run.local_features,
        },
        &choice,
    )?;
    instance.set_rerank_candidates(run.rerank_k);
    instance.set_vote_candidates(run.votes);
    Ok((guard, engine, instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run options as a command line would give them.
    #[derive(clap::Parser)]
    struct Line {
        #[command(flatten)]
        run: RunOptions,
    }

    fn parse(args: &[&str]) -> std::result::Result<Line, clap::Error> {
        <Line as clap::Parser>::try_parse_from(std::iter::once("eval").chain(args.iter().copied()))
    }

    #[test]
    fn a_bad_reciprocal_setting_is_refused_with_the_command_line() {
        let refused = parse(&["--reciprocal", "true"]).err().unwrap().to_string();
        assert!(
            refused.contains("expected off, default or k1="),
            "{refused}"
        );
        assert!(parse(&["--reciprocal", "k9=1"]).is_err());
        let line = parse(&["--reciprocal", "off", "--reciprocal", "k1=10,kept=3"]).unwrap();
        let settings = line.run.reciprocal_settings().unwrap();
        assert_eq!(settings.len(), 2);
        assert!(settings[0].1.reciprocal.is_none());
        let custom = settings[1].1.reciprocal.unwrap();
        assert_eq!((custom.k1, custom.kept), (10, 3));
    }
}
