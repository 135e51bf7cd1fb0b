//! Which runtime executes ONNX models: tract (pure Rust, always built with `onnx`) or
//! onnxruntime (the `ort` feature; its shared library is loaded when the process first
//! needs it, from `--onnxruntime`, `ORT_DYLIB_PATH` or a standard location).
//!
//! The runtime is a property of the process, not of the instance: both give the same
//! vectors for the same model (same preprocessing, same outputs), so an instance built
//! with one is searched with the other. `auto` takes onnxruntime when its library is
//! found and loads, tract otherwise.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

/// Library file name looked for in the standard locations.
const LIBRARY: &str = "libonnxruntime.so";

/// Runtime asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelRuntime {
    /// onnxruntime when its library is found, tract otherwise.
    #[default]
    Auto,
    /// Always tract.
    Tract,
    /// Always onnxruntime; opening a model fails when it is unavailable.
    Ort,
}

/// A model runtime name that is none of `auto`, `tract`, `ort`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model runtime {0:?}: use auto, tract or ort")]
pub struct UnknownRuntime(pub String);

impl FromStr for ModelRuntime {
    type Err = UnknownRuntime;

    fn from_str(text: &str) -> Result<Self, UnknownRuntime> {
        match text {
            "auto" => Ok(ModelRuntime::Auto),
            "tract" => Ok(ModelRuntime::Tract),
            "ort" | "onnxruntime" => Ok(ModelRuntime::Ort),
            other => Err(UnknownRuntime(other.to_string())),
        }
    }
}

/// The runtime choice and where onnxruntime's library is, when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Runtime asked for.
    pub runtime: ModelRuntime,
    /// onnxruntime's shared library (else `ORT_DYLIB_PATH`, else a standard location).
    pub library: Option<PathBuf>,
}

static SETTINGS: RwLock<RuntimeSettings> = RwLock::new(RuntimeSettings {
    runtime: ModelRuntime::Auto,
    library: None,
});

/// Most onnxruntime sessions per model asked for; 0: one per core.
static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many onnxruntime sessions each model opened from now on may run at once
/// (0: one per core). More concurrent calls wait for a session.
pub fn set_model_sessions(limit: usize) {
    SESSIONS.store(limit, Ordering::Relaxed);
}

/// Most onnxruntime sessions a model opened now may have: the setting, else the cores.
#[must_use]
pub fn model_sessions() -> usize {
    match SESSIONS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

thread_local! {
    /// This thread's model runs share the cores with other work ([`sharing_cores`]).
    static SHARING_CORES: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the model runs it starts on this thread each on one core: the caller
/// keeps the other cores busy meanwhile (another run, or work of its own). A lone run
/// otherwise spreads over every core (onnxruntime's wide session), and a second run or
/// other work started beside it would either wait for it or fight its threads for the
/// cores; two one-core runs side by side finish sooner than two wide ones in turn.
pub fn sharing_cores<T>(f: impl FnOnce() -> T) -> T {
    /// Puts the flag back even when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SHARING_CORES.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SHARING_CORES.with(|s| s.replace(true)));
    f()
}

/// Whether this thread is inside [`sharing_cores`]: its model runs take one core.
#[must_use]
pub fn shares_cores() -> bool {
    SHARING_CORES.with(Cell::get)
}

/// Sets the runtime used by models opened from now on in this process.
pub fn set_model_runtime(settings: RuntimeSettings) {
    *SETTINGS.write() = settings;
}

/// The runtime models opened now will use.
#[must_use]
pub fn model_runtime() -> RuntimeSettings {
    SETTINGS.read().clone()
}

/// onnxruntime's library: the given path, else `ORT_DYLIB_PATH`, else the first existing
/// of `~/.cache/imgsearch/onnxruntime/` (where `tools/fetch-onnxruntime.sh` puts it),
/// `/usr/local/lib`, `/usr/lib/x86_64-linux-gnu`, `/usr/lib`.
#[must_use]
pub fn find_onnxruntime(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    cache
        .map(|c| c.join("imgsearch/onnxruntime"))
        .into_iter()
        .chain(
            ["/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib"]
                .into_iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(LIBRARY))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_parse() {
        assert_eq!("auto".parse(), Ok(ModelRuntime::Auto));
        assert_eq!("tract".parse(), Ok(ModelRuntime::Tract));
        assert_eq!("ort".parse(), Ok(ModelRuntime::Ort));
        assert!("cuda"
            .parse::<ModelRuntime>()
            .unwrap_err()
            .to_string()
            .contains("cuda"));
    }

    #[test]
    fn sharing_cores_holds_within_its_call_only() {
        assert!(!shares_cores());
        let inside = sharing_cores(|| sharing_cores(shares_cores) && shares_cores());
        assert!(inside);
        assert!(!shares_cores());
        let caught = std::panic::catch_unwind(|| sharing_cores(|| panic!("run failed")));
        assert!(caught.is_err());
        assert!(!shares_cores(), "a panic does not leave the flag set");
    }

    #[test]
    fn a_given_library_wins() {
        let given = Path::new("/opt/x/libonnxruntime.so.1.32.0");
        assert_eq!(find_onnxruntime(Some(given)).as_deref(), Some(given));
    }
}
