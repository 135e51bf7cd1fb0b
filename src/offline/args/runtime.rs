//! The `--model-runtime` / `--onnxruntime` / `--model-sessions` options: which runtime
//! executes ONNX models in this process (serve, instance create, import, imgsearch-eval)
//! and how many onnxruntime sessions each model may run at once.

use std::path::PathBuf;

use super::ArgsError;
use crate::vision::{set_model_runtime, set_model_sessions, ModelRuntime, RuntimeSettings};

/// Model runtime, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    // The help says what this build has: `ort` is a default feature, so only a build
    // made with --no-default-features lacks onnxruntime.
    #[cfg_attr(
        feature = "ort",
        doc = "Runtime of ONNX models: auto (onnxruntime when its library is found, else tract), tract, or ort (onnxruntime, loaded at run time from the library tools/setup.sh fetches or --onnxruntime names)."
    )]
    #[cfg_attr(
        not(feature = "ort"),
        doc = "Runtime of ONNX models: auto or tract (this build was made without onnxruntime: ort needs the default features)."
    )]
    #[arg(
        long,
        global = true,
        env = "IMGSEARCH_MODEL_RUNTIME",
        default_value = "auto"
    )]
    pub model_runtime: String,
    /// onnxruntime's shared library (default: ORT_DYLIB_PATH, else
    /// ~/.cache/imgsearch/onnxruntime/libonnxruntime.so, /usr/local/lib, /usr/lib).
    #[arg(long, global = true, value_name = "LIBRARY")]
    pub onnxruntime: Option<PathBuf>,
    /// Most onnxruntime sessions per model, i.e. model runs at once (default: one per
    /// core); further requests wait for a session.
    #[arg(
        long,
        global = true,
        env = "IMGSEARCH_MODEL_SESSIONS",
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub model_sessions: Option<u16>,
}

impl RuntimeArgs {
    /// The settings these options describe; a message naming the bad option otherwise.
    pub fn settings(&self) -> Result<RuntimeSettings, ArgsError> {
        let runtime: ModelRuntime = self
            .model_runtime
            .parse()
            .map_err(ArgsError::ModelRuntime)?;
        Ok(RuntimeSettings {
            runtime,
            library: self.onnxruntime.clone(),
        })
    }

    /// Makes these settings the process's (for every model opened from now on).
    pub fn apply(&self) -> Result<(), ArgsError> {
        set_model_runtime(self.settings()?);
        set_model_sessions(self.model_sessions.map_or(0, usize::from));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        runtime: RuntimeArgs,
    }

    #[test]
    fn the_help_says_what_this_build_has() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(!help.contains("--features ort"), "{help}");
        let ort_described = help.contains("loaded at run time");
        assert_eq!(ort_described, cfg!(feature = "ort"), "{help}");
    }

    #[test]
    fn runtime_options_parse_and_refuse_unknown_names() {
        let cli = Cli::try_parse_from(["x", "--model-runtime", "tract"]).unwrap();
        assert_eq!(
            cli.runtime.settings().unwrap(),
            RuntimeSettings {
                runtime: ModelRuntime::Tract,
                library: None
            }
        );
        let cli =
            Cli::try_parse_from(["x", "--model-runtime", "ort", "--onnxruntime", "/l.so"]).unwrap();
        let settings = cli.runtime.settings().unwrap();
        assert_eq!(settings.runtime, ModelRuntime::Ort);
        assert_eq!(settings.library, Some(PathBuf::from("/l.so")));
        let cli = Cli::try_parse_from(["x", "--model-runtime", "gpu"]).unwrap();
        assert!(cli
            .runtime
            .settings()
            .unwrap_err()
            .to_string()
            .contains("--model-runtime"));
    }
}
