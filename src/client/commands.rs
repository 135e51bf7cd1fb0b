//! The administration commands of the CLI, online or offline: `instance
//! create|list|show|spec|delete` and `index rebuild|whiten` run against the server of the data
//! directory when one runs (or `--server URL`), else directly on the data directory.
//!
//! Both ways produce the same [`InstanceSummary`] rows, so `instance list` prints one
//! table whichever way it went.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{discovery, Client, ClientError};
use crate::auth::SigningKey;
use crate::engine::{
    Engine, EngineError, ExtractionSpec, ExtractorChoice, InstanceSpec, InstanceSummary,
    WhiteningParams,
};

/// `--server`, `--access-key-id`, `--access-key-secret`, `--tls-ca` of the commands with an
/// online mode.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OnlineArgs {
    /// Base URL of a running server (default: the server running on --data-dir, found
    /// from its pid and address files; without one, work offline on the data directory).
    #[arg(long, env = "IMGSEARCH_SERVER", conflicts_with = "offline")]
    pub server: Option<String>,
    /// Work on the data directory even when a server runs on it (only `index rebuild`
    /// works beside one; the others then refuse because the directory is in use).
    #[arg(long)]
    pub offline: bool,
    /// The access key to sign requests to the server with (servers with access keys).
    #[command(flatten)]
    pub access_key: crate::config::AccessKeyArgs,
    /// PEM file of the CA (or the self-signed certificate) to verify an https server
    /// against, instead of the public web roots.
    #[arg(long, env = "IMGSEARCH_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// Where a command runs.
#[derive(Debug, Clone)]
pub enum Target {
    /// Through the API of a running server.
    Online(Client),
    /// Directly on a data directory no server holds.
    Offline(PathBuf),
}

impl OnlineArgs {
    /// The server named by `--server`, else the one running on `data_dir`, else offline;
    /// an error only when `--tls-ca` cannot be used.
    pub fn target(&self, data_dir: &Path) -> std::result::Result<Target, ClientError> {
        let key = match (
            &self.access_key.access_key_id,
            &self.access_key.access_key_secret,
        ) {
            (Some(id), Some(secret)) => Some(SigningKey {
                id: id.clone(),
                secret: secret.clone(),
            }),
            _ => None,
        };
        if self.offline {
            return Ok(Target::Offline(data_dir.to_path_buf()));
        }
        let Some(url) = self
            .server
            .clone()
            .or_else(|| discovery::running_server(data_dir))
        else {
            return Ok(Target::Offline(data_dir.to_path_buf()));
        };
        let client = Client::new(&url, key);
        Ok(Target::Online(match &self.tls_ca {
            Some(ca) => client.trusting(ca)?,
            None => client,
        }))
    }
}

/// What can stop an administration command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The offline engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The command cannot be run this way.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of the commands.
pub type Result<T> = std::result::Result<T, CommandError>;

/// One field of a reply, decoded.
fn field<T: serde::de::DeserializeOwned>(reply: &Map<String, Value>, name: &str) -> Result<T> {
    let value = reply.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value)
        .map_err(|e| CommandError::Invalid(format!("the server's reply has no usable {name}: {e}")))
}

/// `instance list`: every instance, by name.
pub fn list(target: &Target) -> Result<Vec<InstanceSummary>> {
    match target {
        Target::Online(client) => field(&client.call("/admin/instances", &[])?, "Instances"),
        Target::Offline(dir) => Ok(Engine::open_existing(dir)?
            .instances()
            .iter()
            .map(|i| i.summary())
            .collect()),
    }
}

/// `instance show NAME`.
pub fn show(target: &Target, name: &str) -> Result<InstanceSummary> {
    match target {
        Target::Online(client) => field(
            &client.call("/admin/instance/show", &[("InstanceName", name)])?,
            "Instance",
        ),
        Target::Offline(dir) => Ok(Engine::open_existing(dir)?.instance(name)?.summary()),
    }
}

/// `instance spec NAME`: the instance's extraction spec (with the server's preview side
/// when one runs).
pub fn spec(target: &Target, name: &str) -> Result<ExtractionSpec> {
    match target {
        Target::Online(client) => field(
            &client.call("/admin/instance/spec", &[("InstanceName", name)])?,
            "Spec",
        ),
        Target::Offline(dir) => Ok(Engine::open_existing(dir)?.instance(name)?.spec()?),
    }
}

/// `instance delete NAME`: the instance and every picture of it, for good.
pub fn delete(target: &Target, name: &str) -> Result<()> {
    match target {
        Target::Online(client) => {
            client.call("/admin/instance/delete", &[("InstanceName", name)])?;
            Ok(())
        }
        Target::Offline(dir) => Ok(Engine::open_existing(dir)?.delete_instance(name)?),
    }
}

/// `instance create`: online only the built-in extractor or an ONNX model by its path
/// (read by the server, so made absolute here) can be asked for.
pub fn create(
    target: &Target,
    spec: &InstanceSpec,
    choice: &ExtractorChoice,
) -> Result<InstanceSummary> {
    match target {
        Target::Online(client) => {
            let qps = spec.qps.to_string();
            let capacity = spec.capacity.to_string();
            let service = spec.service_type.code().to_string();
            let mut params = vec![
                ("InstanceName", spec.name.as_str()),
                ("ServiceType", service.as_str()),
                ("Qps", qps.as_str()),
                ("Capacity", capacity.as_str()),
                (
                    "LocalFeatures",
                    if spec.local_features { "true" } else { "false" },
                ),
            ];
            let model;
            if let ExtractorChoice::Onnx(options) = choice {
                // The server applies the defaults of a new model instance to a bare path.
                if *choice != ExtractorChoice::model(options.path.clone()) {
                    return Err(CommandError::Invalid(
                        "a running server is given only --model; stop it to create an instance \
                         with other --model-* options"
                            .into(),
                    ));
                }
                model = std::path::absolute(&options.path)
                    .unwrap_or_else(|_| options.path.clone())
                    .display()
                    .to_string();
                params.push(("Extractor", "onnx"));
                params.push(("Model", model.as_str()));
            }
            field(&client.call("/admin/instance/create", &params)?, "Instance")
        }
        Target::Offline(dir) => {
            let engine = Engine::open(dir)?;
            Ok(engine.create_instance_with(spec, choice)?.summary())
        }
    }
}

/// `index rebuild NAME` through a running server (`/admin/rebuild`); the generation.
pub fn rebuild_online(client: &Client, name: &str) -> Result<u64> {
    field(
        &client.call("/admin/rebuild", &[("InstanceName", name)])?,
        "Generation",
    )
}

/// `index whiten NAME` through a running server (`/admin/whiten`): the server's message.
pub fn whiten_online(
    client: &Client,
    name: &str,
    params: Option<&WhiteningParams>,
) -> Result<String> {
    let (dims, shrink, power);
    let mut pairs = vec![("InstanceName", name)];
    match params {
        None => pairs.push(("Off", "true")),
        Some(p) => {
            shrink = p.shrink.to_string();
            power = p.power.to_string();
            pairs.push(("Shrink", &shrink));
            pairs.push(("Power", &power));
            if p.within_product {
                pairs.push(("WithinProduct", "true"));
            }
            if let Some(d) = p.dims {
                dims = d.to_string();
                pairs.push(("Dims", &dims));
            }
        }
    }
    let reply = client.call("/admin/whiten", &pairs)?;
    let number = |k: &str| reply.get(k).map(Value::to_string).unwrap_or_default();
    Ok(format!(
        "{} instance {name} on the server: {} dimensions, fitted on {} pictures; generation {}",
        field::<String>(&reply, "Message")?,
        number("Dimension"),
        number("FittedOn"),
        number("Generation"),
    ))
}
