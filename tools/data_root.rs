//! Where the evaluation and benchmark programs find datasets and models: the folder
//! named by `IMGSEARCH_SHARED`, else `../shared` beside the checkout (where the tests
//! look too), holding `datasets/` and `models/`. Every location also has its own
//! option (`--root`, `--grocery`, `--catalogue`, `--models`), which wins.

use std::path::{Path, PathBuf};

/// Environment variable naming the folder of datasets and models.
pub const DATA_ROOT_ENV: &str = "IMGSEARCH_SHARED";

/// The folder of datasets and models: `$IMGSEARCH_SHARED`, else `../shared` beside the
/// checkout this program was built from.
pub fn data_root() -> PathBuf {
    std::env::var_os(DATA_ROOT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// The dataset `name` under the data root (`datasets/NAME`).
pub fn dataset(name: &str) -> PathBuf {
    data_root().join("datasets").join(name)
}
