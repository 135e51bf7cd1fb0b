//! `Engine`: the data directory, its store and every instance in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use parking_lot::RwLock;

use super::category::ServiceType;
use super::clock::now_ms;
use super::extractors::ExtractorChoice;
use super::instance::compaction::CompactionPolicy;
use super::instance::Instance;
use super::settings::ServerSettings;
use super::{EngineError, Result};
use crate::index::ScanMode;
use crate::store::{InstanceMeta, Store, StoreError, StoreMode};

/// Folder of the RocksDB database inside the data directory.
pub const STORE_DIR: &str = "store";
/// Folder of the instances' vector indexes inside the data directory.
pub const INSTANCES_DIR: &str = "instances";
/// Instance created in an empty data directory so that a new server answers at once.
pub const DEFAULT_INSTANCE: &str = "demoinstance";

/// Instance id under which node-wide progress marks are kept (instances start at 1).
const NODE_MARK: u32 = 0;

/// An instance's extractor as recorded in its settings, resolved once by the node that
/// took a creation and carried to the others (which need the same model file).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedExtractor {
    /// Extractor name ([`crate::store::InstanceMeta::extractor`]).
    pub extractor: String,
    /// The resolved model settings (JSON), for an ONNX extractor.
    pub model: Option<String>,
    /// Vector dimension.
    pub dimension: u32,
}

/// Whether a new instance keeps local features when its creator does not say
/// (`instance create`, CreateInstance): on, since the cascade made them cheap enough.
/// Instances stored without the setting keep theirs (off).
pub const DEFAULT_LOCAL_FEATURES: bool = true;

/// Settings of a new instance.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Name (1 to 20 letters, digits, `-`, `_`).
    pub name: String,
    /// Service type.
    pub service_type: ServiceType,
    /// Searches per second allowed; 0 = unlimited (the default: a self-hosted server has
    /// no per-instance tier; a value emulates the vendor's).
    pub qps: u32,
    /// Pictures it may hold.
    pub capacity: u64,
    /// Keep local features of every picture and re-rank searches by picture with them
    /// (copy detection; costs storage and search time, see ARCHITECTURE.md).
    pub local_features: bool,
}

impl InstanceSpec {
    /// A product instance with default limits (searches unlimited).
    pub fn product(name: &str) -> Self {
        InstanceSpec {
            name: name.into(),
            service_type: ServiceType::Product,
            qps: 0,
            capacity: 1_000_000,
            local_features: false,
        }
    }
}

/// All instances of one data directory.
pub struct Engine {
    data_dir: PathBuf,
    store: Arc<Store>,
    instances: RwLock<BTreeMap<String, Arc<Instance>>>,
    /// DumpMeta and IncreaseInstance tasks, and the buckets increases read (`tasks/`).
    pub(super) tasks: Arc<super::tasks::TaskRegistry>,
    /// What the server's flags set in every instance, kept for instances opened later.
    pub(super) settings: ServerSettings,
    /// Orders instance creations and deletions (a name deleted and created again must
    /// not meet its old folder).
    admin: parking_lot::Mutex<()>,
}

static KERNEL_PROBE: Once = Once::new();

impl Engine {
    /// Opens a data directory for writing, creating it when missing (the server seeds
    /// [`DEFAULT_INSTANCE`] itself: [`Self::ensure_default_instance`]). Index folders of
    /// instances the store no longer has (a deletion cut short by a crash) are removed.
    pub fn open(data_dir: &Path) -> Result<Self> {
        KERNEL_PROBE.call_once(|| {
            let found = crate::index::kernels::init();
            tracing::info!(simd = %found, "vector kernels ready");
        });
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Locked(format!("{}: {e}", data_dir.display())))?;
        let store = Arc::new(Store::open(
            &data_dir.join(STORE_DIR),
            StoreMode::ReadWrite,
        )?);
        let engine = Engine {
            data_dir: data_dir.to_path_buf(),
            store,
            instances: RwLock::new(BTreeMap::new()),
            // After the store: its lock makes this process the list's only writer.
            tasks: Arc::new(super::tasks::TaskRegistry::open(data_dir)?),
            settings: ServerSettings::default(),
            admin: parking_lot::Mutex::new(()),
        };
        let metas = engine.store.instances()?;
        super::teardown::remove_orphan_folders(
            &data_dir.join(INSTANCES_DIR),
            metas.iter().map(|m| m.name.as_str()),
            |name| validate_name(name).is_ok(),
        )?;
        for meta in metas {
            let name = meta.name.clone();
            let instance = Instance::open(engine.store.clone(), meta, &engine.index_dir(&name))?;
            tracing::info!(instance = %name, pictures = instance.info().total_count, "instance open");
            engine
                .instances
                .write()
                .insert(name, instance.into_shared());
        }
        Ok(engine)
    }

    /// Saves every instance's columns (the next open need not walk the records) and
    /// flushes the store so that a clean stop leaves no write-ahead logs behind (they
    /// would be replayed at the next open and, until then, take disk).
    pub fn flush(&self) -> Result<()> {
        for instance in self.instances() {
            if let Err(e) = instance.persist_columns() {
                tracing::warn!(instance = %instance.meta().name, error = %e, "could not save the columns");
            }
        }
        Ok(self.store.flush()?)
    }

    /// Opens a data directory that must exist already (commands that read one: a typo
    /// in `--data-dir` is reported instead of creating an empty directory).
    pub fn open_existing(data_dir: &Path) -> Result<Self> {
        require_data_dir(data_dir)?;
        Self::open(data_dir)
    }

    /// Creates [`DEFAULT_INSTANCE`] when the data directory has no instance at all, so
    /// that a new server answers at once (only `serve` does this).
    pub fn ensure_default_instance(&self) -> Result<()> {
        let _admin = self.admin.lock();
        if self.instances.read().is_empty() && self.store.instances()?.is_empty() {
            // The ready instance of a fresh server is what `instance create` gives.
            let spec = InstanceSpec {
                local_features: DEFAULT_LOCAL_FEATURES,
                ..InstanceSpec::product(DEFAULT_INSTANCE)
            };
            self.create_instance_locked(&spec, &ExtractorChoice::Builtin)?;
        }
        Ok(())
    }

    /// Deletes an instance for good: its store keys go in one synced batch (the commit
    /// point), then its index folder. Writes racing with it fail with InstanceNotFound;
    /// searches of other instances go on. A crash after the commit leaves only the
    /// folder, which the next [`Self::open`] removes.
    pub fn delete_instance(&self, name: &str) -> Result<()> {
        let _admin = self.admin.lock();
        let instance = self.instance(name)?;
        instance.delete_from_store()?;
        self.instances.write().remove(name);
        crate::fault::point("instance_delete.after_store_commit");
        super::teardown::remove_folder(&self.index_dir(name))?;
        Ok(())
    }

    /// Replaces instance `name`'s data with the same instance's in the data directory
    /// `source` (a restored snapshot beside this one, on the same file system): its keys
    /// are copied in under a new id, the name is switched to them in one synced batch
    /// (the commit point; a crash before it leaves the old instance whole, after it the
    /// open reconciles the vector files with the store), then the snapshot's index
    /// folder is moved into place and the instance opened again. Other instances keep
    /// serving; this one answers InstanceNotFound for the moment of the switch. Returns
    /// the new instance (callers holding the old one must let it go).
    pub fn replace_instance(&self, name: &str, source: &Path) -> Result<Arc<Instance>> {
        let _admin = self.admin.lock();
        let old = self.instance(name)?;
        let copied = Store::open(&source.join(STORE_DIR), StoreMode::ReadOnly)?;
        let mut meta = copied
            .instances()?
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| EngineError::InstanceNotFound(name.to_string()))?;
        let from = meta.id;
        meta.id = self.store.reserve_instance_id()?;
        let keys = self.store.copy_instance_keys(&copied, from, meta.id)?;
        drop(copied);
        self.instances.write().remove(name);
        if let Err(e) = old.replace_in_store(&meta) {
            self.instances.write().insert(name.to_string(), old);
            return Err(e);
        }
        drop(old);
        let index_dir = self.index_dir(name);
        super::teardown::remove_folder(&index_dir)?;
        let moved = std::fs::rename(source.join(INSTANCES_DIR).join(name), &index_dir);
        if let Err(e) = moved {
            // The open below writes the vector file again from the store.
            tracing::warn!(instance = %name, error = %e, "the snapshot's vector files could not be moved into place: rebuilding them from the store");
        }
        let instance = Instance::open(self.store.clone(), meta, &index_dir)?.into_shared();
        self.settings.apply_to(&instance);
        tracing::info!(instance = %name, keys, pictures = instance.info().total_count, "instance replaced by the snapshot's copy");
        self.instances
            .write()
            .insert(name.to_string(), instance.clone());
        Ok(instance)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The record store (snapshots checkpoint it).
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    fn index_dir(&self, name: &str) -> PathBuf {
        self.data_dir.join(INSTANCES_DIR).join(name)
    }

    /// Creates an instance with the built-in extractor.
    pub fn create_instance(&self, spec: &InstanceSpec) -> Result<Arc<Instance>> {
        self.create_instance_with(spec, &ExtractorChoice::Builtin)
    }

    /// Creates an instance with the extractor chosen; the model (if any) is loaded and
    /// checked before anything is stored.
    pub fn create_instance_with(
        &self,
        spec: &InstanceSpec,
        choice: &ExtractorChoice,
    ) -> Result<Arc<Instance>> {
        let _admin = self.admin.lock();
        self.create_instance_locked(spec, choice)
    }

    /// [`Self::create_instance_with`] under the lock that orders creations and deletions.
    fn create_instance_locked(
        &self,
        spec: &InstanceSpec,
        choice: &ExtractorChoice,
    ) -> Result<Arc<Instance>> {
        validate_name(&spec.name)?;
        let (extractor, model) = super::extractors::create(&spec.name, choice)?;
        self.create_instance_using(spec, extractor, model)
    }

    /// The extractor `choice` resolves to, as the instance would record it (a model is
    /// loaded and checked): what a replicated creation carries to the other nodes.
    pub fn record_extractor(
        &self,
        name: &str,
        choice: &ExtractorChoice,
    ) -> Result<RecordedExtractor> {
        validate_name(name)?;
        let (extractor, model) = super::extractors::create(name, choice)?;
        Ok(RecordedExtractor {
            extractor: extractor.name().to_string(),
            model,
            dimension: extractor.dimension() as u32,
        })
    }

    /// Creates an instance whose extractor another node resolved (a replicated
    /// creation): rebuilt from the recorded settings, as when an instance opens.
    pub fn create_instance_recorded(
        &self,
        spec: &InstanceSpec,
        recorded: &RecordedExtractor,
    ) -> Result<Arc<Instance>> {
        let _admin = self.admin.lock();
        validate_name(&spec.name)?;
        let probe = InstanceMeta {
            id: 0,
            name: spec.name.clone(),
            service_type: spec.service_type.code(),
            qps: spec.qps,
            capacity: spec.capacity,
            extractor: recorded.extractor.clone(),
            model: recorded.model.clone(),
            dimension: recorded.dimension,
            created_ms: 0,
            local_features: spec.local_features,
        };
        let extractor = super::extractors::open(&probe)?;
        self.create_instance_using(spec, extractor, recorded.model.clone())
    }

    /// A progress mark of this node rather than of an instance (id 0, which no instance
    /// has), e.g. the applied position of the replicated catalog.
    pub fn node_progress(&self, source: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.store.progress(NODE_MARK, source)?)
    }

    /// Commits a node progress mark ([`Self::node_progress`]), synced.
    pub fn commit_node_progress(&self, source: &str, value: Vec<u8>) -> Result<()> {
        Ok(self.store.commit_mark(&crate::store::ProgressMark {
            inst: NODE_MARK,
            source: source.to_string(),
            value,
        })?)
    }

    fn create_instance_using(
        &self,
        spec: &InstanceSpec,
        extractor: Arc<dyn crate::vision::Extractor>,
        model: Option<String>,
    ) -> Result<Arc<Instance>> {
        let meta = InstanceMeta {
            id: 0,
            name: spec.name.clone(),
            service_type: spec.service_type.code(),
            qps: spec.qps,
            capacity: spec.capacity,
            extractor: extractor.name().to_string(),
            model,
            dimension: extractor.dimension() as u32,
            created_ms: now_ms(),
            local_features: spec.local_features,
        };
        let meta = self.store.create_instance(meta)?;
        let instance = Instance::open_with(
            self.store.clone(),
            meta,
            &self.index_dir(&spec.name),
            extractor,
        )?
        .into_shared();
        self.settings.apply_to(&instance);
        self.instances
            .write()
            .insert(spec.name.clone(), instance.clone());
        Ok(instance)
    }

    /// The instance of that name.
    pub fn instance(&self, name: &str) -> Result<Arc<Instance>> {
        self.instances
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::InstanceNotFound(name.to_string()))
    }

    /// Every instance, by name.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances.read().values().cloned().collect()
    }

    /// Sets the longest side of the previews made at AddImage time, in every instance
    /// (0 = none; at most [`crate::vision::MAX_THUMBNAIL_SIDE`]).
    pub fn set_thumbnail_size(&self, side: u32) {
        self.settings.set_thumbnail_size(side, &self.instances());
    }

    /// Sets which rows every instance's searches scan (`--scan`); quantised copies are
    /// built in the background. Engines start with [`ScanMode::F32`].
    pub fn set_scan_mode(&self, mode: ScanMode) {
        self.settings.set_scan_mode(mode, &self.instances());
    }

    /// Sets how long a search of any instance waits for concurrent searches to share
    /// one scan (`--batch-window-us`; zero, the default of an engine: never).
    pub fn set_batch_window(&self, window: std::time::Duration) {
        self.settings.set_batch_window(window, &self.instances());
    }

    /// Sets whether searches of busy scenes with Crop also try segment proposals in
    /// every instance (`--scene-proposals`; off in a new engine).
    pub fn set_scene_proposals(&self, on: bool) {
        self.settings.set_scene_proposals(on, &self.instances());
    }

    /// Sets whether every instance whose catalogue holds products with several pictures
    /// gets a whitening fitted within its products once writes pause
    /// (`--fit-within-products`; off in a new engine).
    pub fn set_fit_within_products(&self, on: bool) {
        self.settings.set_fit_within_products(on, &self.instances());
    }

    /// Sets whether every instance re-ranks undecided, unverified searches by picture by
    /// k-reciprocal neighbours (`--reciprocal-rerank`; off in a new engine).
    pub fn set_reciprocal_rerank(&self, on: bool) {
        self.settings.set_reciprocal_rerank(on, &self.instances());
    }

    /// Sets when every instance rewrites its vector file without dead rows
    /// (`--compact-dead-share`, `--compact-min-dead-rows`). Engines start with
    /// [`CompactionPolicy::default`].
    pub fn set_compaction(&self, policy: CompactionPolicy) {
        self.settings.set_compaction(policy, &self.instances());
    }

    /// Which rows searches scan.
    pub fn scan_mode(&self) -> ScanMode {
        self.settings.scan_mode()
    }

    /// The longest side of the previews made at AddImage time (0 = none).
    pub fn thumbnail_size(&self) -> u32 {
        self.settings.thumbnail_size()
    }

    /// What the record store holds in memory now (`/metrics`).
    pub fn store_memory(&self) -> crate::store::StoreMemory {
        self.store.memory()
    }

    /// Reloads every instance's index from its manifest (SIGHUP, admin route).
    pub fn reload_all(&self) -> Result<usize> {
        let instances = self.instances();
        for instance in &instances {
            instance.reload()?;
        }
        Ok(instances.len())
    }
}

/// Writes a compacted generation of an instance's index from the store, beside a server
/// that may be running (the store is opened read-only); returns the generation. The
/// server picks it up on reload, appending whatever was added meanwhile. Rows are the
/// instance's stored projection (whitening) of the stored vectors.
pub fn rebuild_offline(data_dir: &Path, name: &str) -> Result<u64> {
    require_data_dir(data_dir)?;
    let store = Store::open(&data_dir.join(STORE_DIR), StoreMode::ReadOnly)?;
    let meta = store
        .instances()?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| EngineError::InstanceNotFound(name.to_string()))?;
    let dir = data_dir.join(INSTANCES_DIR).join(name);
    let projection = super::instance::whitening::stored(&store, &meta)?;
    super::instance::reconcile::write_generation_from_store(&store, &meta, &dir, &projection)
}

/// A data directory that must exist (and hold a store) for a command that reads it.
pub fn require_data_dir(data_dir: &Path) -> Result<()> {
    if !data_dir.is_dir() {
        return Err(EngineError::NoDataDir(format!(
            "{} does not exist",
            data_dir.display()
        )));
    }
    if !data_dir.join(STORE_DIR).is_dir() {
        return Err(EngineError::NoDataDir(format!(
            "{} is not an imgsearch data directory (it has no {STORE_DIR}/ folder)",
            data_dir.display()
        )));
    }
    Ok(())
}

pub(super) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 20
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidInstanceName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_stored_with_local_features_off_keep_them_off_after_an_upgrade() {
        // New instances get them from the callers' default (`instance create`,
        // CreateInstance, `DEFAULT_LOCAL_FEATURES`); what is stored is never re-read
        // through that default.
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path()).unwrap();
            engine
                .create_instance(&InstanceSpec::product("old"))
                .unwrap();
            engine
                .create_instance(&InstanceSpec {
                    local_features: true,
                    ..InstanceSpec::product("new")
                })
                .unwrap();
        }
        let engine = Engine::open(dir.path()).unwrap();
        let old = engine.instance("old").unwrap();
        assert!(!old.summary().local_features);
        assert!(old.vote_index_size().is_none());
        let new = engine.instance("new").unwrap();
        assert!(new.summary().local_features);
        assert!(new.vote_index_size().is_some());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("demo_instance-1").is_ok());
        for bad in ["", "a/b", "..", "averyveryverylongname1", "名字"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
