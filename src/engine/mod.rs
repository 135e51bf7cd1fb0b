//! The engine: instances, the order of writes, and the search flow. Callable without
//! HTTP (the CLI, offline tools and benchmarks use it directly).
//!
//! An [`Instance`] is a record store partition + a vector index + an extractor, with
//! attribute columns and string dictionaries kept beside the vectors for filters.
//!
//! Write order (AddImage): decode and extract outside any lock; then, under the
//! instance's write lock, append the vector row and `fdatasync` it, commit the store
//! batch (record, vector, name entry, thumbnail and local features when kept, `next_doc`
//! receipt) with sync, and only then make
//! the row visible. A crash before the batch leaves a row past the receipt, dropped when
//! the index opens; a crash after it leaves an acknowledged picture whose row is there.
//!
//! On open (and on reload) the index is reconciled with the store, the source of truth
//! (see `instance/reconcile.rs`). Online snapshots (`snapshot/`) rely on the same order: a store
//! checkpoint first, then each vector file's rows up to the header read under the
//! instance's write lock.
//!
//! An instance may have a whitening (`instance/whitening/`): index rows and queries are then a
//! projection of the extractor's vectors, which the store keeps unprojected.

mod analyser;
mod attributes;
mod batcher;
mod category;
mod clock;
mod error;
mod extractors;
mod imagenet;
mod instance;
mod registry;
mod row_gate;
#[cfg(test)]
mod scan_mode_tests;
mod search;
mod settings;
pub mod snapshot;
mod spec;
mod stage_timer;
mod summary;
mod tasks;
mod teardown;

pub use crate::index::ScanMode;
pub use analyser::{Analyser, Analysis, Extras, STORED_LOCAL_POINTS};
pub use category::{ServiceType, CATEGORY_OTHER, PRODUCT_CATEGORIES};
pub use error::{EngineError, Result};
pub use extractors::{ExtractorChoice, DEFAULT_MODEL_COLOUR_WEIGHT};
pub use instance::compaction::{CompactionPolicy, DEFAULT_DEAD_SHARE, DEFAULT_MIN_DEAD_ROWS};
pub use instance::votes::{
    VoteIndexSize, DEFAULT_VOTE_CANDIDATES, VOTE_DISTANCE, VOTE_POINTS, VOTE_RATIO,
};
pub(crate) use instance::whitening::stored as stored_projection;
pub use instance::whitening::{Projection, Whitening, WhiteningError, WhiteningParams};
pub use instance::{
    AddOutcome, AddPicture, Attributes, Instance, InstanceInfo, InstanceSettings, PictureParts,
    PreparedPicture, Stored, Subject, WhitenOutcome, DEFAULT_RERANK_CANDIDATES, QUERY_LOCAL_POINTS,
    SCENE_PROPOSALS,
};
pub use registry::{
    rebuild_offline, require_data_dir, Engine, InstanceSpec, RecordedExtractor, DEFAULT_INSTANCE,
    DEFAULT_LOCAL_FEATURES, INSTANCES_DIR, STORE_DIR,
};
pub use search::{
    verified_score, FilterOutcome, Found, Reciprocal, SearchOutcome, SearchQuery, MIN_INLIERS,
};
pub use snapshot::{SnapshotError, SnapshotInfo};
pub use spec::{ExtractionSpec, ExtractorSpec, SpecError, SPEC_VERSION};
pub use summary::{summary_table, InstanceSummary};
pub(crate) use tasks::meta_line;
pub use tasks::{import_manifest, ManifestObserver, RowFailure, ROWS_PER_BATCH};
pub use tasks::{IncreaseFilter, TaskInfo, TaskKind, TaskStatus, CODE_FAILED, CODE_OK};
pub use tasks::{KeyedPicture, LocalWrites, WriteSink};

#[cfg(test)]
pub(crate) mod testkit {
    //! Engine test fixtures.

    use std::sync::Arc;

    use super::{Engine, Instance, InstanceSpec, ServiceType};

    /// A new engine in a temporary directory holding one empty generic instance `name`
    /// (SIMD kernels probed). Bind all three: the directory must outlive the engine.
    pub(crate) fn generic_instance(name: &str) -> (tempfile::TempDir, Engine, Arc<Instance>) {
        generic_instance_keeping(name, false)
    }

    /// [`generic_instance`] keeping local features (keypoints) of its pictures or not.
    pub(crate) fn generic_instance_keeping(
        name: &str,
        local_features: bool,
    ) -> (tempfile::TempDir, Engine, Arc<Instance>) {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec {
                service_type: ServiceType::Generic,
                local_features,
                ..InstanceSpec::product(name)
            })
            .unwrap();
        (dir, engine, instance)
    }
}
